"""Switching a model to its fallbacks from an incident, on SQLite and PostgreSQL: the
official openai SDK's calls for the model are served by its fallback while it is
switched, on the record; restored, by the model again; a second gateway on the same store
follows; audited; refused naming why (no fallbacks, unknown, twice, not an admin)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.gateway.support import openai_client
from tests.support import (
    ADMIN_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    GatewayFactory,
    Running,
    auth,
    base_config,
    wait_for,
)
from trimtab.gateway.catalog import Catalog
from trimtab.gateway.switches import SwitchCache, SwitchStore
from trimtab.providers.build import build_providers
from trimtab.store.tables import audit_log, requests
from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture
def running(
    gateway: GatewayFactory, store_url: str, upstream: MockUpstream, tmp_path: Path
) -> Running:
    models = base_config(upstream.url, store_url, tmp_path / "x")["models"]
    # gpt-primary answers; while switched, claude-mock (another provider, another wire) does
    models["gpt-primary"] = {
        "provider": "upstream",
        "model": "mock-1",
        "fallbacks": ["claude-mock"],
    }
    return gateway(store=store_url, keys=ROUTE_KEYS, models=models)


def act(running: Running, incident: str, key: str = ADMIN_KEY, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{running.url}/api/incidents/{incident}/actions", json=body, headers=auth(key), timeout=30
    )


def served_by(running: Running, question: str) -> tuple[str, dict[str, Any] | None]:
    """Ask gpt-primary through the openai SDK; the provider on the request's record."""
    raw = openai_client(running).chat.completions.with_raw_response.create(
        model="gpt-primary", messages=[{"role": "user", "content": question}]
    )
    assert raw.parse().choices[0].message.content
    rid = raw.headers["x-trimtab-request-id"]

    def row() -> Any:
        with running.engine.connect() as conn:
            return conn.execute(
                select(requests.c.provider, requests.c.attributes).where(requests.c.id == rid)
            ).first()

    wait_for(row)
    found = row()
    return found.provider, (found.attributes or {}).get("model_switched")


def test_a_switched_model_is_served_by_its_fallbacks_until_restored(
    running: Running, store_url: str
) -> None:
    opened = httpx.post(
        f"{running.url}/api/incidents", headers=auth(ADMIN_KEY), timeout=30,
        json={"type": "vendor_outage", "message": "gpt-primary answers slowly",
              "models": ["gpt-primary"]},
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    incident = opened.json()["id"]
    assert served_by(running, "before") == ("upstream", None)

    switched = act(running, incident, action="switch_model", message="provider degraded")
    assert switched.status_code == 200, switched.text
    assert switched.json()["result"] == {"model": "gpt-primary", "to": ["claude-mock"]}
    assert switched.json()["incident"]["state"] == "mitigated"
    provider, note = served_by(running, "during")  # this process: at once
    assert provider == "claude"
    assert note == {"model": "gpt-primary", "to": "claude-mock"}

    # another gateway on the same store follows within its refresh
    other = Catalog(running.config, build_providers(running.config))
    cache = SwitchCache(SwitchStore(running.engine), other)
    asyncio.run(cache.refresh())
    primary = other.resolve("gpt-primary")
    assert [t.name for t in other.plan(primary)] == ["claude-mock"]
    assert [t.name for t in other.plan(other.resolve("gpt-mock"))] == ["gpt-mock"]

    twice = act(running, incident, action="switch_model", message="again")
    assert twice.status_code == 409 and "switched to its fallbacks already" in twice.text

    restored = act(running, incident, action="restore_model", message="provider recovered")
    assert restored.status_code == 200, restored.text
    assert served_by(running, "after") == ("upstream", None)
    again = act(running, incident, action="restore_model", message="again")
    assert again.status_code == 409 and "is not switched" in again.text

    with running.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.target, audit_log.c.detail)
            .where(audit_log.c.action.in_(["model.switch", "model.restore"]))
            .order_by(audit_log.c.id)
        ).all()
    assert [(r.action, r.target) for r in rows] == [
        ("model.switch", "gpt-primary"), ("model.restore", "gpt-primary")
    ]  # fmt: skip
    assert rows[0].detail["incident"] == incident and rows[0].detail["to"] == ["claude-mock"]
    timeline = httpx.get(
        f"{running.url}/api/incidents/{incident}/timeline", headers=auth(ADMIN_KEY), timeout=30
    ).json()
    said = str(timeline)
    assert "switch_model" in said and "restore_model" in said


def test_a_switch_is_refused_naming_why(running: Running) -> None:
    opened = httpx.post(
        f"{running.url}/api/incidents", headers=auth(ADMIN_KEY), timeout=30,
        json={"type": "vendor_outage", "message": "two models", "models": ["gpt-mock",
              "gpt-primary"]},
    ).json()  # fmt: skip
    incident = opened["id"]
    which = act(running, incident, action="switch_model", message="m")
    assert which.status_code == 400 and "names 2 models" in which.text
    none = act(running, incident, action="switch_model", model="gpt-mock", message="m")
    assert none.status_code == 409 and "has no fallbacks" in none.text
    assert none.json()["error"]["code"] == "no_fallbacks"
    unknown = act(running, incident, action="switch_model", model="gpt-nope", message="m")
    assert unknown.status_code == 404 and "no model 'gpt-nope'" in unknown.text
    own = httpx.post(
        f"{running.url}/api/incidents", headers=auth(OPERATOR_KEY), timeout=30,
        json={"type": "vendor_outage", "message": "mine", "models": ["gpt-primary"]},
    )  # fmt: skip
    assert own.status_code == 201, own.text
    operator = act(running, own.json()["id"], OPERATOR_KEY, action="switch_model", message="m")
    assert operator.status_code == 403
    assert "only a key with role 'admin' may switch a model" in operator.text
    assert [t.name for t in _plan(running)] == ["gpt-primary", "claude-mock"]


def _plan(running: Running) -> list[Any]:
    catalog = Catalog(running.config, build_providers(running.config))
    asyncio.run(SwitchCache(SwitchStore(running.engine), catalog).refresh())
    return catalog.plan(catalog.resolve("gpt-primary"))
