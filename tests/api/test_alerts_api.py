"""The alerts and silences API through a real gateway: alerts delivered by the server's
outbox to a receiver on loopback, reading with tenancy, acknowledging (PagerDuty hears
`acknowledge`), silences, roles, audit, errors in the wire format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.alerts.support import Receiver, receiving, signal
from tests.support import (
    ADMIN_KEY,
    GLOBEX_OPERATOR_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.alerts.runtime import AlertRuntime
from trimtab.store.tables import audit_log


@dataclass
class Served:
    running: Running
    receiver: Receiver
    http: httpx.AsyncClient

    @property
    def alerts(self) -> AlertRuntime:
        runtime: AlertRuntime = self.running.server_app.state.alerts
        return runtime

    async def call(self, method: str, path: str, key: str | None, **kw: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=auth(key), **kw)


@pytest.fixture
async def served(gateway: GatewayFactory, sqlite_url: str) -> AsyncIterator[Served]:
    async with receiving() as rec:
        alerting = {
            "sinks": {
                "hook": {"kind": "webhook", "url": f"{rec.url}/hook"},
                "pager": {
                    "kind": "pagerduty",
                    "url": f"{rec.url}/pd",
                    "routing_key": "RK",
                    "severities": ["page"],
                },
            },
            "outbox": {"interval_s": 0.05, "base_backoff_s": 0.05, "max_backoff_s": 0.1},
        }
        running = await asyncio.to_thread(
            gateway, store=sqlite_url, keys=ROUTE_KEYS, alerts=alerting
        )
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            yield Served(running, rec, http)


async def until(condition: Callable[[], object], rounds: int = 500) -> None:
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def fire(served: Served, *signals: Any) -> list[int]:
    changes = await asyncio.to_thread(served.alerts.service.observe, list(signals))
    served.alerts.outbox.wake()
    return [c.alert.id for c in changes]


async def test_an_alert_is_delivered_read_and_acknowledged(served: Served) -> None:
    (alert_id,) = await fire(served, signal())
    rec = served.receiver
    await until(lambda: len(rec.bodies("/pd")) == 1 and len(rec.bodies("/hook")) == 1)
    trigger = rec.bodies("/pd")[0]
    assert (trigger["event_action"], trigger["routing_key"]) == ("trigger", "RK")

    listed = await served.call("GET", "/api/alerts?state=firing&severity=page", VIEWER_KEY)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["data"]] == [alert_id]
    one = await served.call("GET", f"/api/alerts/{alert_id}", VIEWER_KEY)
    detail = one.json()
    assert detail["state"] == "firing" and detail["labels"]["route"] == "support"
    assert {(d["sink"], d["event"]) for d in detail["deliveries"]} == {
        ("hook", "trigger"),
        ("pager", "trigger"),
    }
    assert all("payload" not in d for d in detail["deliveries"])  # no routing key leaks

    refused = await served.call(
        "POST", f"/api/alerts/{alert_id}/ack", VIEWER_KEY, json={"message": "mine"}
    )
    assert refused.status_code == 403
    missing = await served.call("POST", f"/api/alerts/{alert_id}/ack", OPERATOR_KEY, json={})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "message"
    heard: list[str] = []  # what incidents hear: the runtime's listeners
    served.alerts.on_changes(lambda changes: heard.extend(c.change for c in changes))
    acked = await served.call(
        "POST", f"/api/alerts/{alert_id}/ack", OPERATOR_KEY, json={"message": "on it"}
    )
    assert acked.status_code == 200
    assert heard == ["acknowledged"]
    assert (acked.json()["state"], acked.json()["acked_by"]) == ("acknowledged", "ml@acme")
    await until(lambda: len(rec.bodies("/pd")) == 2)
    assert rec.bodies("/pd")[1] == {
        "routing_key": "RK",
        "event_action": "acknowledge",
        "dedup_key": trigger["dedup_key"],
    }
    engine = served.running.server_app.state.engine
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "alert.ack")).all()
    assert len(rows) == 1 and rows[0].target == str(alert_id)

    await fire(served, signal(firing=False))
    await until(lambda: len(rec.bodies("/pd")) == 3)
    assert rec.bodies("/pd")[2]["event_action"] == "resolve"
    late = await served.call(
        "POST", f"/api/alerts/{alert_id}/ack", OPERATOR_KEY, json={"message": "late"}
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "alert_resolved"
    assert late.headers["x-trimtab-request-id"].startswith("req_")


async def test_ids_and_filters_are_checked(served: Served) -> None:
    bad = await served.call("GET", "/api/alerts/abc", VIEWER_KEY)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "alert_id"
    none = await served.call("GET", "/api/alerts/999999", VIEWER_KEY)
    assert none.status_code == 404 and none.json()["error"]["code"] == "alert_not_found"
    state = await served.call("GET", "/api/alerts?state=burning", VIEWER_KEY)
    assert state.status_code == 400 and "firing" in state.json()["error"]["message"]
    assert (await served.call("GET", "/api/alerts", None)).status_code == 401


async def test_a_tenant_sees_only_its_alerts(served: Served) -> None:
    acme, globex, shared = await fire(
        served,
        signal("a", labels={"tenant": "acme"}),
        signal("g", labels={"tenant": "globex"}),
        signal("s", labels={"node": "host:1"}, source="keystore"),
    )
    as_globex = await served.call("GET", "/api/alerts", GLOBEX_VIEWER_KEY)
    assert [a["id"] for a in as_globex.json()["data"]] == [globex]
    as_admin = await served.call("GET", "/api/alerts", ADMIN_KEY)
    assert sorted(a["id"] for a in as_admin.json()["data"]) == sorted([acme, globex, shared])
    hidden = await served.call("GET", f"/api/alerts/{acme}", GLOBEX_VIEWER_KEY)
    assert hidden.status_code == 404
    ack = await served.call(
        "POST", f"/api/alerts/{acme}/ack", GLOBEX_OPERATOR_KEY, json={"message": "x"}
    )
    assert ack.status_code == 404


async def test_silences_suppress_delivery_and_are_audited(served: Served) -> None:
    made = await served.call(
        "POST",
        "/api/silences",
        OPERATOR_KEY,
        json={"matchers": ["route=support"], "duration": "2h", "message": "deploying"},
    )
    assert made.status_code == 201, made.text
    silence = made.json()
    # an operator of acme is confined to acme
    assert silence["matchers"] == ["route=support", "tenant=acme"]
    assert silence["active"] and silence["created_by"] == "ml@acme"
    (hushed,) = await fire(served, signal("hushed", labels={"route": "support", "tenant": "acme"}))
    (loud,) = await fire(served, signal("loud", labels={"route": "billing", "tenant": "acme"}))
    rec = served.receiver
    await until(lambda: len(rec.bodies("/hook")) == 1)
    assert rec.bodies("/hook")[0]["alert"]["id"] == loud
    shown = (await served.call("GET", f"/api/alerts/{hushed}", VIEWER_KEY)).json()
    assert shown["silenced"] and shown["deliveries"] == []

    listed = await served.call("GET", "/api/silences", VIEWER_KEY)
    assert [s["id"] for s in listed.json()["data"]] == [silence["id"]]
    assert (await served.call("GET", "/api/silences", GLOBEX_VIEWER_KEY)).json()["data"] == []
    theirs = await served.call("DELETE", f"/api/silences/{silence['id']}", GLOBEX_OPERATOR_KEY)
    assert theirs.status_code == 404
    wide = await served.call(
        "POST",
        "/api/silences",
        GLOBEX_OPERATOR_KEY,
        json={"matchers": ["tenant=~.*"], "duration": "1h", "message": "all of it"},
    )
    assert wide.status_code == 400 and wide.json()["error"]["param"] == "matchers"
    for body, param in (
        ({"matchers": ["route"], "duration": "1h", "message": "m"}, "matchers"),
        ({"matchers": ["route=x"], "duration": "soon", "message": "m"}, "duration"),
        ({"matchers": [], "duration": "1h", "message": "m"}, "matchers"),
        ({"matchers": ["route=x"], "duration": "1h"}, "message"),
    ):
        r = await served.call("POST", "/api/silences", ADMIN_KEY, json=body)
        assert (r.status_code, r.json()["error"]["param"]) == (400, param), body

    ended = await served.call("DELETE", f"/api/silences/{silence['id']}", OPERATOR_KEY)
    assert ended.status_code == 200 and not ended.json()["active"]
    again = await served.call("DELETE", f"/api/silences/{silence['id']}", OPERATOR_KEY)
    assert again.status_code == 409 and again.json()["error"]["code"] == "silence_ended"
    assert (await served.call("GET", "/api/silences", VIEWER_KEY)).json()["data"] == []
    every = await served.call("GET", "/api/silences?state=all", VIEWER_KEY)
    assert len(every.json()["data"]) == 1
    engine = served.running.server_app.state.engine
    with engine.connect() as conn:
        actions = [
            r.action
            for r in conn.execute(
                select(audit_log).where(audit_log.c.action.like("silence.%"))
            ).all()
        ]
    assert sorted(actions) == ["silence.create", "silence.delete"]
