"""The console in headless Chromium against a real `trimtab serve`: every page renders
without a console error, and the flows an operator's day needs work end to end."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    VIEWER_KEY,
    auth,
    wait_for,
)
from tests.web.conftest import SignIn
from tests.web.support import LONG_QUESTION, REGRESSED, Console, chat

PAGES = [
    ("overview", "/ui", "Overview"),
    ("requests", "/ui/requests", "Requests"),
    ("routes", "/ui/routes", "Routes"),
    ("route", "/ui/routes/web-answer", "Route web-answer"),
    ("route-gate", "/ui/routes/gated-answer", "Route gated-answer"),
    ("diff", "/ui/routes/web-answer/diff?from=1&to=2", "web-answer: v1 → v2"),
    ("rollout", "/ui/routes/web-answer/rollout", "Rollout of web-answer"),
    ("evals", "/ui/evals", "Eval runs"),
    ("slos", "/ui/slos", "SLOs"),
    ("costs", "/ui/costs", "Costs"),
    ("incidents", "/ui/incidents", "Incidents"),
    ("keys", "/ui/admin/keys", "API keys"),
    ("audit", "/ui/admin/audit", "Audit log"),
]


def shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def test_every_page_renders_for_an_admin(sign_in: SignIn, shots: Path) -> None:
    login = sign_in(None)
    expect(login.locator("h1")).to_have_text("Sign in")
    shot(login, shots, "login")
    page = sign_in(ADMIN_KEY)
    for name, path, heading in PAGES:
        page.goto(path)
        expect(page.locator("h1")).to_have_text(heading)
        if name == "overview":
            expect(page.locator(".chart canvas")).to_have_count(4)  # uPlot drew each chart
            expect(page.get_by_test_id("overview")).to_contain_text("web-answer")
        if name == "slos":
            expect(page.locator(".chart canvas")).to_have_count(1)
        shot(page, shots, name)
    # times are shown in the viewer's zone (the context's: Asia/Tokyo) by the page's script
    page.goto("/ui/requests")
    first = page.locator("time").first
    expect(first).to_contain_text("GMT+9")
    assert (first.get_attribute("title") or "").endswith(" UTC")


def test_a_phone_sees_the_overview(sign_in: SignIn, shots: Path) -> None:
    page = sign_in(ADMIN_KEY)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/ui")
    expect(page.locator("h1")).to_have_text("Overview")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px)"
    shot(page, shots, "overview-phone")


def test_filter_requests_sort_and_open_one(sign_in: SignIn, shots: Path) -> None:
    page = sign_in(OPERATOR_KEY)
    page.goto("/ui/requests")
    form = page.get_by_test_id("request-filters")
    form.get_by_label("Route").fill("web-answer")
    form.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/ui/requests\?.*route=web-answer"))
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows).to_have_count(8)
    for text in rows.locator("td:nth-child(4)").all_inner_texts():
        assert text.startswith("web-answer"), text
    page.get_by_role("button", name="Latency").click()  # the column sorts, by keyboard too
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Latency")
    page.keyboard.press("Enter")  # focus stays on the header's button: sorts the other way
    expect(page.locator("th[aria-sort=descending]")).to_have_text("Latency")
    rows.first.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("Request req_")
    expect(page.get_by_test_id("conversation")).to_contain_text("Can I return shoes?")
    expect(page.get_by_test_id("conversation")).to_contain_text("You answer questions about")
    expect(page.get_by_test_id("answer")).not_to_be_empty()
    expect(page.get_by_test_id("request-facts")).to_contain_text("web-answer")
    shot(page, shots, "request")


def test_the_explorer_searches_the_bodies(sign_in: SignIn, console: Console) -> None:
    api = httpx.get(
        console.url + "/api/requests", params={"q": "RETURN SHOES", "limit": 200},
        headers=auth(OPERATOR_KEY),
    ).json()["data"]  # fmt: skip
    assert api
    page = sign_in(OPERATOR_KEY)
    page.goto("/ui/requests")
    form = page.get_by_test_id("request-filters")
    form.get_by_label("Text").fill("RETURN SHOES")
    form.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/ui/requests\?q=RETURN\+SHOES"))
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows).to_have_count(len(api))
    assert rows.locator("td:nth-child(2)").all_inner_texts() == [r["id"] for r in api]
    page.goto("/ui/requests?q=no+such+words+anywhere")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_text("No requests match.")


def test_a_large_body_is_cut_with_a_link_to_load_it_whole(sign_in: SignIn) -> None:
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/requests?user=long")
    page.get_by_test_id("requests").locator("tbody tr a").first.click()
    request_body = page.locator("details").first
    request_body.locator("summary").click()
    cut = request_body.locator("pre.body").inner_text()
    assert len(cut) < len(LONG_QUESTION)
    request_body.get_by_test_id("load-whole").click()
    expect(page).to_have_url(re.compile(r"whole=1"))
    page.locator("details").first.locator("summary").click()
    assert LONG_QUESTION.strip() in page.locator("details").first.locator("pre.body").inner_text()


def test_diff_two_versions_side_by_side(sign_in: SignIn) -> None:
    page = sign_in(VIEWER_KEY)
    page.goto("/ui/routes/web-answer")
    form = page.get_by_test_id("diff-form")
    form.get_by_label("From").select_option("1")
    form.get_by_label("To").select_option("2")
    form.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"/ui/routes/web-answer/diff\?.*from=1.*to=2"))
    side = page.get_by_test_id("side-by-side").first
    expect(side.locator("td.removed del")).to_have_text(["Be brief."])
    expect(side.locator("td.added ins")).to_have_text(["Be brief and kind."])
    changed = page.get_by_test_id("diff-params").locator("tr.changed")
    expect(changed).to_have_count(1)
    expect(changed).to_contain_text("temperature")


def test_start_and_roll_back_a_rollout(sign_in: SignIn, console: Console, shots: Path) -> None:
    page = sign_in(OPERATOR_KEY)
    page.goto("/ui/routes/web-answer/rollout")
    start = page.get_by_test_id("start-form")
    start.get_by_label("Candidate").select_option("2")
    start.get_by_label("Plan").select_option("fast")
    start.get_by_label("Reason").fill("try the kinder prompt")
    start.get_by_label("I confirm: start this rollout").check()
    start.get_by_role("button", name="Start rollout").click()
    expect(page.get_by_test_id("rollout-status")).to_have_text("running")
    expect(page.get_by_test_id("error")).to_have_count(0)
    variables = {"topic": "returns", "question": "Can I return shoes?"}
    for i in range(30):  # evidence for the controller's first decision
        resp = chat(
            console.url, APP_KEY, "route:web-answer", "hi", user=f"r{i}", variables=variables
        )
        assert resp.status_code == 200, resp.text
    rollout = console.url + "/api/routes/web-answer/rollout"
    wait_for(lambda: httpx.get(rollout, headers=auth(OPERATOR_KEY)).json()["last_decision"])
    # the page is live: the controller's decision appears without a reload
    expect(page.get_by_test_id("live")).to_have_attribute("data-live", "5")
    expect(page.get_by_test_id("decision")).not_to_be_empty(timeout=20_000)
    metrics = page.get_by_test_id("metrics").locator("tbody tr")
    assert metrics.count() >= 1
    expect(metrics.first.locator("svg.interval")).to_have_count(1)  # interval and margin drawn
    shot(page, shots, "rollout-running")
    back = page.get_by_test_id("rollback-form")
    back.get_by_label("Reason").fill("customers complain")
    back.get_by_role("button", name="Roll back").click()  # unconfirmed: the form stays
    expect(page.get_by_test_id("rollout-status")).to_have_text("running")
    back.get_by_label("I confirm: roll back now").check()
    back.get_by_role("button", name="Roll back").click()
    expect(page.get_by_test_id("rollout-status")).to_have_text("rolled_back")
    status = httpx.get(
        console.url + "/api/routes/web-answer/rollout", headers=auth(OPERATOR_KEY)
    ).json()
    assert status["status"] == "rolled_back"
    audit = httpx.get(console.url + "/api/audit?target=web-answer", headers=auth(ADMIN_KEY)).json()[
        "data"
    ]
    actions = [(e["action"], e["actor"]) for e in audit]
    assert ("route.rollback", "ml@acme") in actions and ("rollout.start", "ml@acme") in actions
    rollback = next(e for e in audit if e["action"] == "route.rollback")
    assert rollback["detail"]["reason"] == "customers complain"
    assert rollback["remote_addr"] == "127.0.0.1" and rollback["request_id"].startswith("req_")


def test_create_a_key_shown_once_and_revoke_it(sign_in: SignIn, console: Console) -> None:
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/admin/keys")
    form = page.get_by_test_id("create-key")
    form.get_by_label("Owner").fill("dashboards@acme")
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text()
    assert key.startswith("tt-") or len(key) >= 20
    reads = console.url + "/api/requests?limit=1"
    assert httpx.get(reads, headers=auth(key)).status_code == 200
    page.goto("/ui/admin/keys")
    expect(page.get_by_test_id("created-key")).to_have_count(0)  # shown once only
    assert key not in page.content()
    key_id = httpx.get(console.url + "/api/keys", headers=auth(key)).json()["data"]
    mine = [k["id"] for k in key_id if k["owner"] == "dashboards@acme"]
    row = page.locator(f"tr[data-key='{mine[0]}']")
    row.get_by_label("sure").check()
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"tr[data-key='{mine[0]}'] [data-testid=key-status]")).to_have_text(
        "revoked"
    )
    assert httpx.get(reads, headers=auth(key)).status_code == 401


def test_a_viewer_sees_no_operator_buttons(sign_in: SignIn) -> None:
    page = sign_in(VIEWER_KEY)
    page.goto("/ui/routes/web-answer/rollout")
    expect(page.locator("h1")).to_have_text("Rollout of web-answer")
    expect(page.get_by_test_id("operator-actions")).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    page.goto("/ui/admin/keys")
    expect(page.get_by_test_id("create-key")).to_have_count(0)
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit")).to_have_count(0)


def test_a_tenant_sees_no_other_tenants_rows(sign_in: SignIn, console: Console) -> None:
    page = sign_in(GLOBEX_VIEWER_KEY)
    page.goto("/ui/requests")
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows).to_have_count(3)
    assert set(rows.locator("td:nth-child(9)").all_inner_texts()) == {"globex"}
    page.goto("/ui")
    expect(page.get_by_test_id("overview")).not_to_contain_text("web-answer")
    page.goto("/ui/routes")
    expect(page.get_by_test_id("routes")).not_to_contain_text("web-answer")
    acme = httpx.get(
        console.url + "/api/requests?limit=1&route=web-answer", headers=auth(ADMIN_KEY)
    ).json()["data"][0]["id"]
    page.goto(f"/ui/requests/{acme}")
    expect(page.get_by_test_id("error")).to_have_text(f"no request with id '{acme}'")
    page.goto("/ui/requests?tenant=acme")
    expect(page.get_by_test_id("error")).to_contain_text("may not read tenant 'acme'")


def test_acknowledge_an_alert(sign_in: SignIn, console: Console, shots: Path) -> None:
    alerts = console.url + "/api/alerts"
    wait_for(lambda: httpx.get(alerts, headers=auth(ADMIN_KEY)).json()["data"])
    alert = httpx.get(alerts, headers=auth(ADMIN_KEY)).json()["data"][0]
    viewer = sign_in(VIEWER_KEY)
    viewer.goto("/ui/alerts")
    expect(viewer.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/alerts")
    row = page.locator(f"tr[data-alert='{alert['id']}']")
    expect(row.get_by_test_id("alert-state")).to_have_text("firing")
    shot(page, shots, "alerts")
    row.get_by_label("Message").fill("looking at the alarm feature's spend")
    row.get_by_label("sure").check()
    row.get_by_role("button", name="Acknowledge").click()
    expect(row.get_by_test_id("alert-state")).to_contain_text("acknowledged")
    expect(row.get_by_test_id("alert-state")).to_contain_text("by ops@acme")
    after = httpx.get(f"{alerts}/{alert['id']}", headers=auth(ADMIN_KEY)).json()
    assert after["state"] == "acknowledged"
    audit = httpx.get(
        console.url + f"/api/audit?action=alert.ack&target={alert['id']}",
        headers=auth(ADMIN_KEY),
    ).json()["data"]
    assert [e["detail"]["message"] for e in audit] == ["looking at the alarm feature's spend"]


def test_open_an_incident_and_read_its_timeline(sign_in: SignIn, shots: Path) -> None:
    page = sign_in(OPERATOR_KEY)
    page.goto("/ui/incidents")
    table = page.get_by_test_id("incidents")
    expect(table).to_contain_text("web-answer")
    table.locator("tbody a").first.click()
    expect(page.get_by_test_id("incident")).to_contain_text("web-answer")
    expect(page.get_by_test_id("incident-timeline")).to_contain_text("a customer saw a rude answer")
    shot(page, shots, "incident")
    other = sign_in(GLOBEX_VIEWER_KEY)
    other.goto("/ui/incidents")
    expect(other.get_by_test_id("incidents").locator("tbody a")).to_have_count(0)
    other.goto(page.url.replace(page.url.split("/ui")[0], ""))
    expect(other.get_by_test_id("error")).to_contain_text("no incident")


def test_an_eval_run_shows_its_regressions_first(sign_in: SignIn, shots: Path) -> None:
    page = sign_in(VIEWER_KEY)
    page.goto("/ui/evals")
    runs = page.get_by_test_id("runs").locator("tbody tr")
    expect(runs).to_have_count(2)
    runs.first.locator("a").first.click()  # the newest: the candidate
    expect(page.get_by_test_id("comparison")).to_contain_text("Against")
    expect(page.locator("p.error")).to_contain_text(REGRESSED)
    first = page.get_by_test_id("items").locator("tbody tr").first
    expect(first).to_have_class("regressed")
    expect(first).to_contain_text(REGRESSED)
    expect(first).to_contain_text("never said x")
    shot(page, shots, "eval-run")


def test_the_explorer_scrolls_on_by_cursor(sign_in: SignIn, console: Console) -> None:
    everything = httpx.get(
        console.url + "/api/requests?limit=200&tenant=acme", headers=auth(ADMIN_KEY)
    ).json()["data"]
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/requests?tenant=acme&limit=4")
    rows = page.get_by_test_id("requests").locator("tbody tr")
    # each scroll to the end appends the next page; the count is read once a turn, as a
    # page can land between two reads (it did: the second read saw the last page)
    while (before := rows.count()) < len(everything):
        page.mouse.wheel(0, 100_000)
        expect(rows).not_to_have_count(before)
    expect(rows).to_have_count(len(everything))  # every page appended, newest first
    expect(page.get_by_test_id("next-page")).to_have_count(0)
    shown = rows.locator("td:nth-child(2)").all_inner_texts()
    assert shown == [r["id"] for r in everything]
    assert "GMT+9" in rows.last.locator("time").inner_text()  # appended rows in local time


def test_create_and_expire_a_silence(sign_in: SignIn, console: Console, shots: Path) -> None:
    viewer = sign_in(VIEWER_KEY)
    viewer.goto("/ui/alerts")
    expect(viewer.get_by_test_id("silence-form")).to_have_count(0)
    page = sign_in(OPERATOR_KEY)  # acme's operator: its silence is confined to acme
    page.goto("/ui/alerts")
    form = page.get_by_test_id("silence-form")
    form.get_by_label("Matchers").fill("feature=quiet-test\nseverity=ticket")
    form.get_by_label("Duration").fill("3h")
    form.get_by_label("Comment").fill("load test tonight")
    form.get_by_role("button", name="Silence").click()  # unconfirmed: nothing is made
    expect(page.get_by_test_id("silences")).not_to_contain_text("load test tonight")
    form.get_by_label("I confirm: silence these alerts").check()
    form.get_by_role("button", name="Silence").click()
    expect(page.get_by_test_id("error")).to_have_count(0)
    listed = httpx.get(console.url + "/api/silences", headers=auth(ADMIN_KEY)).json()["data"]
    made = next(s for s in listed if s["comment"] == "load test tonight")
    assert made["matchers"] == ["feature=quiet-test", "severity=ticket", "tenant=acme"]
    assert made["created_by"] == "ml@acme" and made["active"]
    row = page.locator(f"tr[data-silence='{made['id']}']")
    expect(row).to_contain_text("tenant=acme")
    row.scroll_into_view_if_needed()
    shot(page, shots, "silences")
    other = sign_in(GLOBEX_VIEWER_KEY)
    other.goto("/ui/alerts")
    expect(other.get_by_test_id("silences")).not_to_contain_text("load test tonight")
    row.get_by_label("sure").check()
    row.get_by_role("button", name="Expire").click()
    expect(page.locator(f"tr[data-silence='{made['id']}']")).to_have_count(0)
    active = httpx.get(console.url + "/api/silences", headers=auth(ADMIN_KEY)).json()["data"]
    assert made["id"] not in [s["id"] for s in active]
    audit = httpx.get(
        console.url + f"/api/audit?target={made['id']}", headers=auth(ADMIN_KEY)
    ).json()["data"]
    actions = {(e["action"], e["actor"], e["detail"].get("via")) for e in audit}
    assert {
        ("silence.create", "ml@acme", "console"),
        ("silence.delete", "ml@acme", "console"),
    } <= actions


def test_note_acknowledge_and_resolve_an_incident(
    sign_in: SignIn, console: Console, shots: Path
) -> None:
    opened = httpx.post(
        console.url + "/api/incidents", headers=auth(OPERATOR_KEY),
        json={"type": "quality_regression", "routes": ["web-answer"], "title": "answers wander",
              "message": "answers drift off topic"},
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    incident = opened.json()["id"]
    viewer = sign_in(VIEWER_KEY)
    viewer.goto(f"/ui/incidents/{incident}")
    expect(viewer.get_by_test_id("incident")).to_contain_text("web-answer")
    expect(viewer.get_by_test_id("incident-actions")).to_have_count(0)
    page = sign_in(OPERATOR_KEY)
    page.goto(f"/ui/incidents/{incident}")
    note = page.get_by_test_id("note-form")
    note.get_by_label("Note", exact=True).fill("the v2 prompt drops the topic variable")
    note.get_by_label("I confirm: add this note").check()
    note.get_by_role("button", name="Add note").click()
    timeline = page.get_by_test_id("incident-timeline")
    expect(timeline).to_contain_text("the v2 prompt drops the topic variable")
    ack = page.get_by_test_id("move-acknowledge")
    ack.get_by_label("Message").fill("on it")
    ack.get_by_label("I confirm: acknowledge this incident").check()
    ack.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("move-acknowledge")).to_have_count(0)  # once only
    expect(timeline).to_contain_text("on it")
    shot(page, shots, "incident-actions")
    resolve = page.get_by_test_id("move-resolve")
    resolve.get_by_label("Message").fill("rolled back to v1")
    resolve.get_by_label("I confirm: resolve this incident").check()
    resolve.get_by_role("button", name="Resolve").click()
    expect(page.locator("h1 .badge")).to_have_text("resolved")
    expect(page.get_by_test_id("move-reopen")).to_have_count(1)
    expect(page.get_by_test_id("move-resolve")).to_have_count(0)
    now = httpx.get(f"{console.url}/api/incidents/{incident}", headers=auth(OPERATOR_KEY)).json()
    assert now["state"] == "resolved"
    assert now["acknowledged_at"] is not None and now["resolved_at"] is not None
    audit = httpx.get(
        console.url + f"/api/audit?target={incident}", headers=auth(ADMIN_KEY)
    ).json()["data"]
    done = {(e["action"], e["actor"]) for e in audit}
    for action in ("incident.note", "incident.acknowledge", "incident.resolve"):
        assert (action, "ml@acme") in done, (action, done)
    resolved = next(e for e in audit if e["action"] == "incident.resolve")
    assert resolved["detail"]["message"] == "rolled back to v1"
    assert resolved["remote_addr"] == "127.0.0.1" and resolved["request_id"].startswith("req_")


GUARDED = """
routes:
  guarded-answer:
    owner: web@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - role: user
          content: "{{question}}"
      guardrails:
        mode: enforce
        input:
          pii: {action: redact, entities: [email]}
"""


def test_a_requests_guardrails_and_add_it_to_a_dataset(
    sign_in: SignIn, console: Console, shots: Path
) -> None:
    applied = httpx.post(
        console.url + "/api/routes/apply", headers=auth(OPERATOR_KEY),
        json={"yaml": GUARDED, "message": "a guarded route"},
    )  # fmt: skip
    assert applied.status_code == 200, applied.text
    question = {"question": "Write to me at jo@example.com about my order"}
    sent = chat(console.url, APP_KEY, "route:guarded-answer", "hi", variables=question)
    assert sent.status_code == 200, sent.text
    found = httpx.get(
        console.url + "/api/requests?route=guarded-answer", headers=auth(OPERATOR_KEY)
    ).json()["data"]
    rid = found[0]["id"]
    viewer = sign_in(VIEWER_KEY)
    viewer.goto(f"/ui/requests/{rid}")
    expect(viewer.get_by_test_id("guardrails")).to_contain_text("input.pii")
    expect(viewer.get_by_test_id("add-to-dataset")).to_have_count(0)  # operators only
    page = sign_in(OPERATOR_KEY)
    page.goto(f"/ui/requests/{rid}")
    expect(page.get_by_test_id("guardrails-summary")).to_contain_text("fired: input.pii")
    pii = page.get_by_test_id("guardrails").locator("tr", has_text="input.pii")
    expect(pii).to_contain_text("redact")
    form = page.get_by_test_id("add-to-dataset")
    form.get_by_label("Dataset").fill("from-console")
    form.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_test_id("added")).to_have_text("Added to dataset from-console as v1.")
    page.get_by_test_id("guardrails").scroll_into_view_if_needed()
    shot(page, shots, "request-guardrails")
    version = httpx.get(
        console.url + "/api/datasets/from-console/versions/1", headers=auth(OPERATOR_KEY)
    )
    assert version.status_code == 200, version.text
    (item,) = version.json()["data"]
    assert item["metadata"]["request_id"] == rid and item["metadata"]["route"] == "guarded-answer"
    # the body as stored: the guardrail redacted the address before it was recorded
    assert item["variables"] == {"question": "Write to me at <EMAIL_1> about my order"}
    form = page.get_by_test_id("add-to-dataset")  # the same input again: nothing new
    form.get_by_label("Dataset").fill("from-console")
    form.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_test_id("added")).to_contain_text("Already in dataset from-console")
    audit = httpx.get(
        console.url + "/api/audit?action=dataset.push", headers=auth(ADMIN_KEY)
    ).json()["data"]
    assert any(e["actor"] == "ml@acme" and "from-console" in (e["target"] or "") for e in audit)


def test_a_bakeoff_scorecard_of_two_runs(sign_in: SignIn, console: Console, shots: Path) -> None:
    page = sign_in(VIEWER_KEY)
    page.goto("/ui/evals?suite=web-suite")
    runs = page.get_by_test_id("runs").locator("tbody tr")
    expect(runs).to_have_count(2)
    newest, older = (r.locator("a").first.inner_text() for r in runs.all())
    for row in runs.all():
        row.get_by_label("pick").check()
    page.get_by_role("button", name="Bake-off of the picked runs").click()
    expect(page).to_have_url(re.compile(rf"/ui/evals/bakeoff\?run={newest}&run={older}"))
    expect(page.locator("h1")).to_have_text("Bake-off of web-suite")
    card = page.get_by_test_id("scorecard")
    expect(card.locator("thead")).to_contain_text(newest)
    expect(card.locator("thead")).to_contain_text(older)
    # the newest (the candidate) failed REGRESSED: 5 of 6; the older passed all 6
    expect(page.get_by_test_id("pass-rate-correct").locator("td")).to_contain_text(
        [re.compile(r"^83\.3 %"), re.compile(r"^100\.0 %")]
    )
    versus = page.get_by_test_id("versus-correct").locator("td")
    expect(versus.nth(0)).to_have_text("\u2013")  # the first is the reference
    expect(versus.nth(1)).to_contain_text("p ")  # the paired comparison against the first
    shot(page, shots, "bakeoff")
    one = console.url + f"/ui/evals/bakeoff?run={newest}"
    page.goto(one.removeprefix(console.url))
    expect(page.get_by_test_id("error")).to_contain_text("a bake-off compares 2 to 8 runs")
    other = sign_in(GLOBEX_VIEWER_KEY)
    other.goto(f"/ui/evals/bakeoff?run={newest}&run={older}")
    expect(other.get_by_test_id("error")).to_contain_text(f"no eval run '{newest}'")
