"""Releases in the console, in headless Chromium against a real `trimtab serve`: two
versions side by side, a rollout started and rolled back, an eval run's regressions,
a bake-off of two runs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import expect

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
from tests.web.screenshots import shot
from tests.web.support import REGRESSED, Console, chat


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
