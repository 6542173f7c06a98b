"""An incident end to end through a real gateway and the CLI: a route's new version calls an
upstream that fails (the mock provider answers 503) during its rollout; an operator opens
an incident; its timeline shows the apply and the rollout; containment rolls the route back
(audited twice: the rollback and the incident's action) and the route serves v1 again; the
postmortem is written, a dataset case is built from the failed requests, and close, refused
before, succeeds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from tests.alerts.support import receiving
from tests.rollouts.support import FAST, api, apply, route_call, routes_yaml
from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.cli import cli
from trimtab.store.tables import audit_log, rollouts

runner = CliRunner()


def trimtab(running: Running, *args: str) -> tuple[int, str]:
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY, "COLUMNS": "220"}
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def actions(running: Running) -> list[tuple[str, str | None]]:
    with running.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.target).order_by(audit_log.c.id))
        return [(a, t) for a, t in rows]


def test_an_incident_from_a_failing_rollout_to_its_postmortem(
    gateway: GatewayFactory, tmp_path: Path
) -> None:
    running = gateway(
        keys=ROUTE_KEYS, rollouts={"check_interval_s": 3600, "plans": {"fast": FAST}}
    )  # the controller stays out of the way: the rollback here is the incident's
    apply(running, routes_yaml("gpt-mock"), "launch")
    apply(running, routes_yaml("gpt-503", greeting="Hi"), "new greeting")  # its upstream fails
    started = api(running, "POST", "/api/routes/faq/rollouts", to="v2", plan="fast",
                  reason="greeting change")  # fmt: skip
    assert started.status_code == 201, started.text
    failed = 0
    with httpx.Client(timeout=30) as http:
        for i in range(40):
            failed += route_call(http, running.url, f"user-{i}").status_code >= 500
    assert 0 < failed < 40  # the candidate's half of the users
    running.wait_for_rows(40)

    why = "faq answers fail with 503"
    code, out = trimtab(running, "incident", "open", "--route", "faq", "--type",
                        "vendor_outage", "--sev", "2", "-m", why)  # fmt: skip
    assert code == 0, out
    incident_id = out.split()[0]
    assert incident_id.startswith("inc_") and "SEV2" in out and "vendor_outage" in out
    assert f"impact: {failed} of 40 requests failed" in out

    code, out = trimtab(running, "incident", "show", incident_id)
    assert code == 0, out
    assert "faq: v2 applied: new greeting" in out
    assert "faq: rollout to v2 started: greeting change" in out
    assert "first minute with failed requests" in out
    assert "incident" in out and "opened: faq answers fail with 503" in out

    assert trimtab(running, "incident", "ack", incident_id)[0] == 0
    code, out = trimtab(running, "incident", "contain", incident_id, "rollback",
                        "-m", "v2's upstream answers 503")  # fmt: skip
    assert code == 0, out
    assert "rollback: route=faq, stable_version=1" in out and "mitigated" in out
    done = actions(running)
    assert ("route.rollback", "faq") in done and ("incident.contain", incident_id) in done
    with running.engine.connect() as conn:
        assert conn.execute(select(rollouts.c.status)).scalar_one() == "rolled_back"
    with httpx.Client(timeout=30) as http:  # every user is served by v1 again
        served = {route_call(http, running.url, f"user-{i}").status_code for i in range(40)}
    assert served == {200}

    code, out = trimtab(running, "incident", "show", incident_id)
    assert "faq: rollout rolled back: v1 serves every request: v2's upstream" in out
    assert trimtab(running, "incident", "note", incident_id, "-m", "upstream 503s")[0] == 0
    assert trimtab(running, "incident", "resolve", incident_id)[0] == 0
    code, out = trimtab(running, "incident", "close", incident_id)
    assert code == 1
    assert "a postmortem (trimtab incident postmortem ID)" in out
    assert "at least one reusable rule" in out

    report = tmp_path / "postmortem.md"
    code, out = trimtab(running, "incident", "postmortem", incident_id, "-o", str(report))
    assert code == 0, out
    text = report.read_text()
    assert text.startswith(f"# Postmortem: vendor outage on faq\n\n{incident_id} · SEV2")
    assert f"| failed requests (5xx, timeouts) | {failed} (" in text
    assert "Containment from the incident: route faq rolled back to v1." in text
    assert "| rule | faq@acme.example | trimtab incident rule |" in text  # the route's owner

    why = "the failed questions become eval cases"
    code, out = trimtab(running, "incident", "rule", incident_id, "--kind", "dataset_case",
                        "--from-failed", "-m", why)  # fmt: skip
    assert code == 0, out
    assert f"dataset_case incident-{incident_id}@v1 ({failed} failed requests)" in out

    code, out = trimtab(running, "incident", "close", incident_id, "-m", "done")
    assert code == 0, out
    assert "closed" in out
    code, out = trimtab(running, "incident", "list", "--state", "closed")
    assert code == 0 and incident_id in out
    assert ("incident.close", incident_id) in actions(running)


PRICING = {"input_per_mtok": 1.5, "output_per_mtok": 75.0}
# "spend question NN" is 3 words; the mock answers "mock reply to: spend question NN"
COST = (3 * 1.5 + 6 * 75.0) / 1e6


def test_a_page_through_the_server_opens_an_incident(gateway: GatewayFactory) -> None:
    """Requests spend acme's daily budget past 100 %: its alert escalates to a page, and the
    page opens a cost-spike incident of tenant acme with the alert's dedup key."""
    running = gateway(
        keys=ROUTE_KEYS,
        models={"priced": {"provider": "upstream", "model": "priced", "pricing": PRICING}},
        budgets=[{"scope": "tenant:acme", "period": "day", "usd": 2.5 * COST,
                  "on_exceed": "alert"}],
    )  # fmt: skip
    with httpx.Client(base_url=running.url, timeout=30) as http:
        for i in range(3):  # 1, 2 (80 %: a ticket), 3 (120 %: the page) times COST
            r = http.post(
                "/v1/chat/completions",
                json={"model": "priced",
                      "messages": [{"role": "user", "content": f"spend question {10 + i}"}]},
                headers={"authorization": f"Bearer {APP_KEY}"},
            )  # fmt: skip
            assert r.status_code == 200, r.text
        found: list[dict[str, object]] = []
        for _ in range(500):
            found = http.get("/api/incidents", headers=auth(ADMIN_KEY)).json()["data"]
            if found:
                break
            time.sleep(0.02)
    assert len(found) == 1, "the page opened no incident"
    incident = found[0]
    assert incident["type"] == "cost_spike" and incident["tenant"] == "acme"
    assert incident["tenants"] == ["acme"] and incident["state"] == "open"
    assert str(incident["dedup_key"]).startswith("budget/")
    assert incident["opened_by"] == "alerts"


SLOS = """
slos:
  faq-availability:
    route: faq
    sli: {kind: availability}
    objective: 0.95
    alerting: {min_events: 5}
"""


async def test_a_failing_canary_pages_opens_an_incident_and_rolls_back(
    gateway: GatewayFactory, sqlite_url: str
) -> None:
    """The issue's whole path: a rollout's candidate calls an upstream that answers 503; the
    SLO evaluator pages on the candidate's own burn; the page reaches a webhook receiver and
    opens one incident (its other rules' pages attach); the evaluator rolls the rollout
    back; the incident's timeline shows the apply, the rollout, the alert and the rollback;
    its postmortem is written with a dataset case from the failed requests; it closes."""
    async with receiving() as rec:
        running = await asyncio.to_thread(
            gateway,
            store=sqlite_url,
            keys=ROUTE_KEYS,
            rollouts={"check_interval_s": 3600, "plans": {"fast": FAST}},
            slo={"evaluate_interval_s": 0.1},
            alerts={
                "sinks": {"hook": {"kind": "webhook", "url": f"{rec.url}/hook"}},
                "outbox": {"interval_s": 0.05, "base_backoff_s": 0.05, "max_backoff_s": 0.1},
            },
        )
        await asyncio.to_thread(apply, running, routes_yaml("gpt-mock"), "launch")
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            ops = auth(OPERATOR_KEY)
            applied = await http.post(
                "/api/slos/apply", json={"yaml": SLOS, "message": "objective"}, headers=ops
            )
            assert applied.status_code == 200, applied.text
            await asyncio.to_thread(apply, running, routes_yaml("gpt-503", greeting="Hi"), "v2")
            body = {"to": "v2", "plan": "fast", "reason": "greeting"}
            started = await http.post("/api/routes/faq/rollouts", headers=ops, json=body)
            assert started.status_code == 201, started.text
            with httpx.Client(timeout=30) as sync:
                codes = [
                    (
                        await asyncio.to_thread(route_call, sync, running.url, f"user-{i}")
                    ).status_code
                    for i in range(40)
                ]
            assert 503 in codes and 200 in codes

            incidents: list[dict[str, Any]] = []
            rollout: dict[str, Any] = {}
            for _ in range(750):
                incidents = (await http.get("/api/incidents", headers=ops)).json()["data"]
                rollout = (await http.get("/api/routes/faq/rollout", headers=ops)).json()
                if incidents and rollout["status"] == "rolled_back" and rec.bodies("/hook"):
                    break
                await asyncio.sleep(0.02)
            assert rollout["status"] == "rolled_back", rollout  # the evaluator's rollback
            assert len(incidents) == 1, incidents  # one incident, however many rules page
            incident = incidents[0]
            assert incident["tenant"] == "acme" and incident["routes"] == ["faq"]
            assert str(incident["dedup_key"]).startswith("slo_burn/acme:faq-availability/")
            assert incident["opened_by"] == "alerts" and incident["first_bad_at"] is not None
            paged = [b["alert"] for b in rec.bodies("/hook")]
            assert any(a["severity"] == "page" and a["labels"].get("route") == "faq" for a in paged)

            iid = incident["id"]
            timeline = (await http.get(f"/api/incidents/{iid}/timeline", headers=ops)).json()
            said = [(e["source"], e["kind"]) for e in timeline["data"]]
            for expected in (
                ("route", "apply"),
                ("route", "rollout_start"),
                ("alert", "alert_opened"),
                ("route", "rollback"),
                ("incident", "opened"),
            ):
                assert expected in said, (expected, said)
            rollback = next(e for e in timeline["data"] if e["kind"] == "rollback")
            assert rollback["actor"] == "slo-evaluator"

            for action in ("acknowledge", "resolve"):
                moved = await http.post(f"/api/incidents/{iid}/actions", headers=ops,
                                        json={"action": action})  # fmt: skip
                assert moved.status_code == 200, moved.text
            rule = await http.post(
                f"/api/incidents/{iid}/rules", headers=ops,
                json={"kind": "dataset_case", "from_failed": True, "message": "eval cases"},
            )  # fmt: skip
            assert rule.status_code == 201, rule.text
            assert rule.json()["rule"]["detail"]["items"] == codes.count(503)
            written = await http.post(f"/api/incidents/{iid}/postmortem", headers=ops)
            text = written.json()["markdown"]
            assert "The rollout controller rolled back on its own" not in text
            assert "A page-severity alert opened the incident automatically." in text
            assert f"| failed requests (5xx, timeouts) | {codes.count(503)} (" in text
            assert "| eval cases | dataset_case | faq@acme.example |" in text
            closed = await http.post(f"/api/incidents/{iid}/close", headers=ops, json={})
            assert closed.status_code == 200, closed.text
            assert closed.json()["state"] == "closed"
