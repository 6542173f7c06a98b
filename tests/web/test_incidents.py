"""The incident page in headless Chromium against a real `trimtab serve`: an operator
contains an incident (pause the route's rollout, roll it back), changes its severity,
writes the postmortem from its draft, records a rule and closes it; an admin revokes a
key from it; a viewer sees no button; another tenant can neither see nor act on it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from playwright.sync_api import Locator, Page, expect

from tests.support import (
    ADMIN_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    VIEWER_KEY,
    auth,
)
from tests.web.conftest import SignIn
from tests.web.support import Console
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.store.engine import make_engine
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

ROUTE = """
routes:
  incident-answer:
    owner: answers@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - role: user
          content: "{{question}} (PROMPT)"
"""


def _post(console: Console, path: str, key: str, **body: Any) -> dict[str, Any]:
    resp = httpx.post(console.url + path, json=body, headers=auth(key), timeout=30)
    assert resp.status_code in (200, 201), resp.text
    data: dict[str, Any] = resp.json()
    return data


def _get(console: Console, path: str, key: str = OPERATOR_KEY) -> Any:
    resp = httpx.get(console.url + path, headers=auth(key), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _incident_on_a_rolling_route(console: Console) -> str:
    """A route with v1 stable and v2 rolling out, and an incident about it."""
    for prompt, message in (("first", "v1"), ("second", "v2 tries a new prompt")):
        text = ROUTE.replace("PROMPT", prompt)
        _post(console, "/api/routes/apply", OPERATOR_KEY, yaml=text, message=message)
    _post(console, "/api/routes/incident-answer/rollouts", OPERATOR_KEY, to="v2", plan="fast",
          reason="the new prompt")  # fmt: skip
    opened = _post(
        console, "/api/incidents", OPERATOR_KEY, type="quality_regression",
        routes=["incident-answer"], title="v2 answers wander", message="answers drift",
    )  # fmt: skip
    return str(opened["id"])


def _act(form: Locator, message: str, confirm: str, button: str) -> None:
    form.get_by_label("Message").fill(message)
    form.get_by_label(confirm).check()
    form.get_by_role("button", name=button).click()


def _shot(page: Page, at: Locator, folder: Path, name: str) -> None:
    at.scroll_into_view_if_needed()
    page.screenshot(path=str(folder / f"{name}.png"))


def test_an_operator_contains_writes_the_postmortem_and_closes(
    sign_in: SignIn, console: Console, shots: Path
) -> None:
    incident = _incident_on_a_rolling_route(console)
    viewer = sign_in(VIEWER_KEY)
    viewer.goto(f"/ui/incidents/{incident}")
    expect(viewer.get_by_test_id("incident")).to_contain_text("incident-answer")
    expect(viewer.locator("main form[method=post]")).to_have_count(0)
    expect(viewer.locator("main button")).to_have_count(0)

    page = sign_in(OPERATOR_KEY)
    page.goto(f"/ui/incidents/{incident}")
    expect(page.get_by_test_id("contain-revoke_key")).to_have_count(0)  # an admin's
    timeline = page.get_by_test_id("incident-timeline")
    pause = page.get_by_test_id("contain-pause_rollout")
    pause.get_by_label("Message").fill("stop the spread")
    pause.get_by_role("button", name="Pause rollout").click()  # unconfirmed: nothing happens
    assert _get(console, "/api/routes/incident-answer/rollout")["status"] == "running"
    _act(pause, "stop the spread", "I confirm: pause this route's rollout", "Pause rollout")
    expect(page.locator("h1 .badge")).to_have_text("mitigated")  # a containment mitigates
    expect(timeline).to_contain_text("stop the spread")
    assert _get(console, "/api/routes/incident-answer/rollout")["status"] == "paused"
    _shot(page, page.get_by_test_id("incident-contain"), shots, "incident-contain")

    back = page.get_by_test_id("contain-rollback")
    _act(back, "v2 drifts off topic", "I confirm: roll this route back now", "Roll back")
    expect(timeline).to_contain_text("v2 drifts off topic")
    route = _get(console, "/api/routes/incident-answer")
    assert route["stable_version"] == 1, route
    assert _get(console, "/api/routes/incident-answer/rollout")["status"] == "rolled_back"

    before = _get(console, f"/api/incidents/{incident}")["severity"]
    target = 1 if before != 1 else 2
    sev = page.get_by_test_id("severity-form")
    sev.locator("select[name=severity]").select_option(str(target))
    _act(sev, "more customers than we thought", "I confirm: change the severity",
         "Change severity")  # fmt: skip
    expect(page.get_by_test_id("incident")).to_contain_text(f"SEV{target}")

    _act(page.get_by_test_id("move-resolve"), "v1 serves again",
         "I confirm: resolve this incident", "Resolve")  # fmt: skip
    expect(page.locator("h1 .badge")).to_have_text("resolved")
    expect(page.get_by_test_id("incident")).to_contain_text("a postmortem")  # to close

    post = page.get_by_test_id("postmortem-form")
    expect(post.get_by_test_id("postmortem-state")).to_contain_text("draft")
    text = post.get_by_label("Postmortem (markdown)")
    drafted = text.input_value()
    assert "v2 answers wander" in drafted and "rollback" in drafted.lower(), drafted
    text.fill(drafted + "\nEdited in the console: the prompt lost its topic.\n")
    post.get_by_label("I confirm: save this postmortem").check()
    post.get_by_role("button", name="Save postmortem").click()
    expect(page.get_by_test_id("postmortem-state")).to_contain_text("Recorded")
    recorded = _get(console, f"/api/incidents/{incident}/postmortem")
    assert recorded["recorded"] is True
    assert "Edited in the console: the prompt lost its topic." in recorded["markdown"]

    rule = page.get_by_test_id("rule-form")
    rule.locator("select[name=kind]").select_option("gate_requirement")
    rule.get_by_label("Reference").fill("risk tier 1 for incident-answer")
    _act(rule, "a prompt change needs an eval run", "I confirm: record this rule", "Record rule")
    expect(page.get_by_test_id("incident-rules")).to_contain_text("risk tier 1 for incident-answer")
    _shot(page, page.get_by_test_id("postmortem-form"), shots, "incident-postmortem")

    _act(page.get_by_test_id("move-close"), "done: the gate now asks for evals",
         "I confirm: close this incident", "Close")  # fmt: skip
    expect(page.locator("h1 .badge")).to_have_text("closed")
    expect(page.get_by_test_id("incident-contain")).to_have_count(0)
    expect(page.get_by_test_id("postmortem")).to_contain_text("Edited in the console")

    now = _get(console, f"/api/incidents/{incident}")
    assert (now["state"], now["severity"], len(now["rules"])) == ("closed", target, 1)
    kinds = [e["kind"] for e in _get(console, f"/api/incidents/{incident}/timeline")["data"]]
    for kind in ("action", "severity", "resolve", "postmortem", "rule", "close"):
        assert kind in kinds, (kind, kinds)
    audit = _get(console, f"/api/audit?target={incident}", ADMIN_KEY)["data"]
    done = [(e["action"], e["actor"], e["detail"].get("action")) for e in audit]
    for entry in (
        ("incident.contain", "ml@acme", "pause_rollout"),
        ("incident.contain", "ml@acme", "rollback"),
        ("incident.severity", "ml@acme", None),
        ("incident.postmortem", "ml@acme", None),
        ("incident.rule", "ml@acme", None),
        ("incident.close", "ml@acme", None),
    ):
        assert entry in done, (entry, done)
    severity = next(e for e in audit if e["action"] == "incident.severity")
    assert severity["detail"] == {"from": before, "to": target,
                                  "message": "more customers than we thought"}  # fmt: skip
    assert severity["remote_addr"] == "127.0.0.1" and severity["request_id"].startswith("req_")
    route_audit = _get(console, "/api/audit?target=incident-answer", ADMIN_KEY)["data"]
    route_done = {(e["action"], e["actor"]) for e in route_audit}
    assert {("rollout.pause", "ml@acme"), ("route.rollback", "ml@acme")} <= route_done


def test_an_admin_revokes_a_key_from_the_incident(sign_in: SignIn, console: Console) -> None:
    made = _post(console, "/api/keys", ADMIN_KEY, tenant="acme", owner="leaky-bot@acme", role="app")
    key, key_id = made["key"], made["id"]
    assert httpx.get(console.url + "/v1/models", headers=auth(key)).status_code == 200
    opened = _post(console, "/api/incidents", ADMIN_KEY, type="pii_leak", tenants=["acme"],
                   message="a bot's key posted in a public channel")  # fmt: skip
    page = sign_in(ADMIN_KEY)
    page.goto(f"/ui/incidents/{opened['id']}")
    revoke = page.get_by_test_id("contain-revoke_key")
    revoke.get_by_label("Key id").fill(key_id)
    _act(revoke, "the key leaked", "I confirm: revoke this key now", "Revoke key")
    expect(page.get_by_test_id("incident-timeline")).to_contain_text("the key leaked")
    assert httpx.get(console.url + "/v1/models", headers=auth(key)).status_code == 401
    # a second revocation is refused with the API's message, on the error page
    page.goto(f"/ui/incidents/{opened['id']}")
    again = page.get_by_test_id("contain-revoke_key")
    again.get_by_label("Key id").fill(key_id)
    _act(again, "once more", "I confirm: revoke this key now", "Revoke key")
    expect(page.get_by_test_id("error")).to_contain_text(f"key '{key_id}' is already revoked")
    audit = _get(console, f"/api/audit?target={key_id}", ADMIN_KEY)["data"]
    revoked = [e for e in audit if e["action"] == "key.revoke"]
    assert len(revoked) == 1 and revoked[0]["detail"]["incident"] == opened["id"]
    _post(console, f"/api/incidents/{opened['id']}/actions", ADMIN_KEY, action="resolve")


def test_another_tenant_can_neither_see_nor_act(sign_in: SignIn, console: Console) -> None:
    opened = _post(console, "/api/incidents", OPERATOR_KEY, type="toxic_output",
                   routes=["web-answer"], message="acme's own trouble")  # fmt: skip
    incident = opened["id"]
    page = sign_in(GLOBEX_OPERATOR_KEY)
    page.goto("/ui/alerts")  # an operator's page with forms: this session's CSRF token
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    page.goto(f"/ui/incidents/{incident}")
    expect(page.get_by_test_id("error")).to_contain_text(f"no incident '{incident}'")
    form: dict[str, str | float | bool] = {
        "csrf": csrf, "confirm": "yes", "message": "not mine", "severity": "1",
    }  # fmt: skip
    for action in ("contain/rollback", "contain/pause_rollout", "severity", "close"):
        resp = page.request.post(f"/ui/incidents/{incident}/{action}", form=form)
        assert resp.status == 404, (action, resp.status)
    forged = page.request.post(f"/ui/incidents/{incident}/severity", form={**form, "csrf": "x"})
    assert forged.status == 403
    now = _get(console, f"/api/incidents/{incident}")
    assert (now["state"], now["severity"]) == ("open", opened["severity"])
    kinds = [e["kind"] for e in _get(console, f"/api/incidents/{incident}/timeline")["data"]]
    assert "action" not in kinds and "severity" not in kinds
    # resolved, so the console's other tests see the open incidents they seeded only
    _post(console, f"/api/incidents/{incident}/actions", OPERATOR_KEY, action="resolve")


def test_a_dataset_case_from_the_incidents_failed_requests(
    sign_in: SignIn, console: Console
) -> None:
    """The rule form's "from the failed requests": the incident's three failed requests on
    its route become the next version of a dataset (learning/incident_cases.py, as the
    API's from_failed), and the rule names it."""
    text = ROUTE.replace("incident-answer", "case-answer").replace("PROMPT", "cases")
    _post(console, "/api/routes/apply", OPERATOR_KEY, yaml=text, message="v1")
    opened = _post(
        console, "/api/incidents", OPERATOR_KEY, type="quality_regression",
        routes=["case-answer"], title="case-answer fails", message="500s on questions",
    )  # fmt: skip
    iid = str(opened["id"])
    now = time.time()
    failed = [
        RequestRecord(
            id=f"req_ca5e{i:028x}", started_at=now + i, api="openai", operation="chat",
            tenant="acme", request_model="gpt-mock", route="case-answer", version="v1",
            status_code=500, duration_ms=30.0, error_message="upstream failed",
            request_body=orjson.dumps({"model": "route:case-answer",
                                       "variables": {"question": f"question {i}"}}).decode(),
        )
        for i in range(3)
    ]  # fmt: skip
    engine = make_engine(f"sqlite:///{console.folder}/trimtab.db")
    try:
        TelemetryStore(engine).write(failed)
        page = sign_in(OPERATOR_KEY)
        page.goto(f"/ui/incidents/{iid}")
        rule = page.get_by_test_id("rule-form")
        rule.locator("select[name=kind]").select_option("dataset_case")
        rule.get_by_test_id("from-failed").check()
        _act(rule, "the failed questions become cases", "I confirm: record this rule",
             "Record rule")  # fmt: skip
        expect(page.get_by_test_id("incident-rules")).to_contain_text(f"incident-{iid}@v1")
        items = DatasetStore(engine).items(DatasetKey("acme", f"incident-{iid}"), 1)
        assert sorted(i.metadata["request_id"] for i in items) == [r.id for r in failed]
        assert {i.variables["question"] for i in items if i.variables} == {
            "question 0", "question 1", "question 2"
        }  # fmt: skip
    finally:
        engine.dispose()
    rules = _get(console, f"/api/incidents/{iid}")["rules"]
    assert rules[0]["kind"] == "dataset_case" and rules[0]["detail"]["items"] == 3
    # closed, so the other pages' tests see the open incidents they made and no more
    _post(console, f"/api/incidents/{iid}/actions", OPERATOR_KEY, action="resolve")
    _post(console, f"/api/incidents/{iid}/postmortem", OPERATOR_KEY)
    _post(console, f"/api/incidents/{iid}/close", OPERATOR_KEY, message="cases recorded")
