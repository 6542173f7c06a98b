"""The incident API through a real gateway, on SQLite and PostgreSQL: open (measured from
the rollups, routes checked), read per tenant, notes, state moves, containment through the
rollouts store (audited twice: the rollback and the incident's action), the postmortem, a
dataset case from the failed requests, close refused naming what is missing; roles."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.support import (
    ADMIN_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.api.incident_endpoints import (
    ACTIONS,
    ActionName,
    ImpactName,
    IncidentTypeName,
    RuleKindName,
)
from trimtab.client import Client
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.incidents.model import IMPACTS, INCIDENT_TYPES, RULE_KINDS
from trimtab.store.tables import audit_log
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

ROUTES = """
routes:
  support-answer:
    owner: support-ml@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - {role: user, content: "{{question}}"}
"""


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    served = gateway(store=store_url, keys=ROUTE_KEYS)
    with Client(served.url, api_key=ADMIN_KEY) as client:
        client.apply(ROUTES, "the support route")
        client.apply(ROUTES.replace("{{question}}", "Q: {{question}}"), "v2")
    return served


def failing(running: Running, n: int = 20, tenant: str = "acme") -> None:
    """`n` route requests a minute or two ago, all in one minute (the impact counts from
    the first bad minute on), half of them failed with 502."""
    minute = (time.time() - 60) // 60 * 60
    TelemetryStore(running.engine).write(
        [
            RequestRecord(
                id=f"req_inc_{tenant}_{i}",
                started_at=minute + 5 + i * 0.1,
                api="openai",
                operation="chat",
                tenant=tenant,
                request_model="route:support-answer",
                route="support-answer",
                version="1",
                user=f"u{i}",
                status_code=502 if i % 2 else 200,
                request_body=json.dumps(
                    {"model": "route:support-answer", "variables": {"question": f"q{i}"}}
                ),
            )
            for i in range(n)
        ]
    )


def post(running: Running, path: str, key: str = OPERATOR_KEY, **body: Any) -> httpx.Response:
    return httpx.post(f"{running.url}{path}", json=body, headers=auth(key), timeout=30)


def get(running: Running, path: str, key: str = OPERATOR_KEY) -> httpx.Response:
    return httpx.get(f"{running.url}{path}", headers=auth(key), timeout=30)


def audited(running: Running, action: str) -> list[dict[str, Any]]:
    with running.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        )
        return [dict(r._mapping) for r in rows]


def test_the_declared_enums_are_the_models() -> None:
    assert set(IncidentTypeName.__args__) == set(INCIDENT_TYPES)  # type: ignore[attr-defined]
    assert set(ImpactName.__args__) == set(IMPACTS)  # type: ignore[attr-defined]
    assert set(RuleKindName.__args__) == set(RULE_KINDS)  # type: ignore[attr-defined]
    assert set(ActionName.__args__) == set(ACTIONS)  # type: ignore[attr-defined]


def test_an_incident_from_open_to_close(running: Running) -> None:
    failing(running)
    opened = post(
        running, "/api/incidents", key=ADMIN_KEY, type="vendor_outage",
        routes=["support-answer"], severity=2, message="answers fail with 502",
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    assert incident["title"] == "vendor outage on support-answer"
    assert incident["severity"] == 2 and incident["state"] == "open"
    assert incident["tenant"] is None  # an admin's: shared
    assert incident["first_bad_at"] is not None
    assert incident["impact"]["requests"] == 20 and incident["impact"]["failed"] == 10
    assert incident["impact"]["users_failed"] == 10
    iid = incident["id"]
    assert audited(running, "incident.open")[0]["target"] == iid

    # a shared incident is an admin's: acme's operator does not see it, a viewer writes nothing
    assert post(running, f"/api/incidents/{iid}/notes", message="x").status_code == 404
    assert post(running, f"/api/incidents/{iid}/notes", VIEWER_KEY, message="x").status_code == 403
    noted = post(running, f"/api/incidents/{iid}/notes", ADMIN_KEY, message="provider down")
    assert noted.status_code == 201 and noted.json()["kind"] == "note"

    # containment: roll the route back from v2 (stable after the second apply) to v1
    moved = post(
        running, f"/api/incidents/{iid}/actions", ADMIN_KEY, action="rollback",
        message="back to the last good version", to="v1",
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["result"] == {"route": "support-answer", "stable_version": 1}
    assert moved.json()["incident"]["state"] == "mitigated"
    assert moved.json()["event"]["detail"]["action"] == "rollback"
    rollback = audited(running, "route.rollback")
    assert rollback[-1]["target"] == "support-answer" and rollback[-1]["detail"]["to"] == 1
    assert audited(running, "incident.contain")[-1]["target"] == iid
    # no rollout on the route: pausing it is a 409
    paused = post(running, f"/api/incidents/{iid}/actions", ADMIN_KEY, action="pause_rollout")
    assert paused.status_code == 409 and "no rollout" in paused.json()["error"]["message"]

    timeline = get(running, f"/api/incidents/{iid}/timeline", VIEWER_KEY)
    assert timeline.status_code == 404  # the shared incident is not acme's viewer's to read
    timeline = get(running, f"/api/incidents/{iid}/timeline", ADMIN_KEY).json()["data"]
    kinds = [(e["source"], e["kind"]) for e in timeline]
    assert kinds.count(("route", "apply")) == 2  # v1, v2
    assert ("telemetry", "first_bad_minute") in kinds
    assert kinds[-4:] == [
        ("incident", "note"),
        ("route", "rollback"),  # the rollouts store's, then the incident's record of it
        ("incident", "action"),
        ("incident", "mitigate"),
    ]

    closing = post(running, f"/api/incidents/{iid}/close", ADMIN_KEY)
    assert closing.status_code == 409
    said = closing.json()["error"]["message"]
    assert "resolved" in said and "postmortem" in said and "rule" in said
    assert (
        post(running, f"/api/incidents/{iid}/actions", ADMIN_KEY, action="resolve").status_code
        == 200
    )

    draft = get(running, f"/api/incidents/{iid}/postmortem", ADMIN_KEY).json()
    assert not draft["recorded"] and "## Contributing factors" in draft["markdown"]
    recorded = post(running, f"/api/incidents/{iid}/postmortem", ADMIN_KEY)
    assert recorded.status_code == 200 and recorded.json()["recorded"]
    assert "| failed requests (5xx, timeouts) | 10 (50 %) |" in recorded.json()["markdown"]

    rule = post(
        running, f"/api/incidents/{iid}/rules", ADMIN_KEY, kind="dataset_case",
        from_failed=True, message="the failed questions become regression cases",
    )  # fmt: skip
    assert rule.status_code == 201, rule.text
    made = rule.json()["rule"]
    assert made["ref"] == f"incident-{iid}@v1" and made["detail"]["items"] == 10
    items = DatasetStore(running.engine).items(DatasetKey("", f"incident-{iid}"), 1)
    assert sorted(i.metadata["request_id"] for i in items) == sorted(
        f"req_inc_acme_{i}" for i in range(1, 20, 2)
    )
    assert items[0].variables is not None and "question" in items[0].variables

    closed = post(running, f"/api/incidents/{iid}/close", ADMIN_KEY, message="done")
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed" and closed.json()["missing_to_close"] == []
    assert audited(running, "incident.close")[-1]["target"] == iid


def test_tenancy_and_bad_input(running: Running) -> None:
    bad = post(running, "/api/incidents", type="flood", message="x")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "type"
    unknown = post(running, "/api/incidents", type="other", message="x", routes=["nope"])
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    other = post(running, "/api/incidents", type="other", message="x", tenants=["globex"])
    assert other.status_code == 403
    for wrong in (7, 2.0, True, "2"):
        sev = post(running, "/api/incidents", type="other", message="x", severity=wrong)
        assert sev.status_code == 400 and sev.json()["error"]["param"] == "severity", wrong

    mine = post(running, "/api/incidents", type="pii_leak", message="emails in answers",
                routes=["support-answer"]).json()  # fmt: skip
    assert mine["tenant"] == "acme" and mine["severity"] == 1  # critical, unmeasured
    theirs = post(running, "/api/incidents", GLOBEX_OPERATOR_KEY, type="cost_spike",
                  message="spend").json()  # fmt: skip
    # each tenant sees its own; another's answers 404; the admin sees both
    assert [i["id"] for i in get(running, "/api/incidents").json()["data"]] == [mine["id"]]
    assert get(running, f"/api/incidents/{theirs['id']}").status_code == 404
    both = get(running, "/api/incidents", ADMIN_KEY).json()["data"]
    assert {i["id"] for i in both} == {mine["id"], theirs["id"]}
    only = get(running, "/api/incidents?tenant=globex", ADMIN_KEY).json()["data"]
    assert [i["id"] for i in only] == [theirs["id"]]
    assert get(running, "/api/incidents?tenant=globex").status_code == 403
    assert get(running, f"/api/incidents/{mine['id']}", VIEWER_KEY).status_code == 200

    # the operator acks its own; revoking keys needs an admin
    ack = post(running, f"/api/incidents/{mine['id']}/actions", action="acknowledge")
    assert ack.status_code == 200 and ack.json()["incident"]["acknowledged_at"] is not None
    again = post(running, f"/api/incidents/{mine['id']}/actions", action="acknowledge")
    assert again.status_code == 409
    revoke = post(running, f"/api/incidents/{mine['id']}/actions", action="revoke_key",
                  key_id="key_x")  # fmt: skip
    assert revoke.status_code == 403 and "admin" in revoke.json()["error"]["message"]
    shared_route = post(running, f"/api/incidents/{mine['id']}/actions", action="rollback")
    assert shared_route.status_code == 403  # the route is shared: only an admin rolls it back
    no_ref = post(running, f"/api/incidents/{mine['id']}/rules", kind="slo", message="m")
    assert no_ref.status_code == 400 and no_ref.json()["error"]["param"] == "ref"
    no_cases = post(running, f"/api/incidents/{mine['id']}/rules", kind="dataset_case",
                    message="m", from_failed=True)  # fmt: skip
    assert no_cases.status_code == 409  # acme has no failed requests recorded
    assert get(running, "/api/incidents/inc_missing").status_code == 404


def test_block_a_tenants_keys(running: Running) -> None:
    with Client(running.url, api_key=ADMIN_KEY) as client:
        made = [
            client.create_key(tenant="globex", role="app", owner="bot@globex") for _ in range(2)
        ]
    incident = post(running, "/api/incidents", ADMIN_KEY, type="cross_tenant_leak",
                    message="globex saw acme's answers", tenants=["globex"]).json()  # fmt: skip
    blocked = post(running, f"/api/incidents/{incident['id']}/actions", ADMIN_KEY,
                   action="block_tenant", tenant="globex", message="contain the leak")  # fmt: skip
    assert blocked.status_code == 200, blocked.text
    result = blocked.json()["result"]
    assert sorted(result["key_ids"]) == sorted(k["id"] for k in made)
    assert result["revoked"] == 2
    # the configuration file's globex keys cannot be revoked here: named, not hidden
    assert result["config_keys_left"]
    revoked = audited(running, "key.revoke")
    assert {r["target"] for r in revoked} == {k["id"] for k in made}
    assert all(r["detail"]["incident"] == incident["id"] for r in revoked)
    # a revoked key is refused at once by this process
    call = httpx.get(f"{running.url}/api/incidents", headers=auth(made[0]["key"]))
    assert call.status_code == 401
