"""GET /api/costs, /api/budgets and /api/budget-events.

The API class against a store filled through `TelemetryStore.write` (exact times, several
days), and the routes as mounted in a real gateway.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    GLOBEX_VIEWER_KEY,
    KEYS,
    VIEWER_KEY,
    GatewayFactory,
    auth,
)
from trimtab.alerts.events import BudgetEvent, insert_event
from trimtab.api.costs import CostsAPI
from trimtab.api.errors import exception_handlers
from trimtab.auth.keyring import KeyRing, key_hash, key_id_of
from trimtab.config import Pricing, parse_config
from trimtab.policy.budgets import period_span
from trimtab.policy.service import Ask, Policy
from trimtab.state.memory import MemoryState
from trimtab.store.engine import make_engine, migrate
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

ACME_KEY_ID = key_id_of(key_hash(APP_KEY))
GLOBEX_KEY_ID = key_id_of(key_hash(GLOBEX_APP_KEY))
NOW = time.time()
HOUR = 3600.0
DAY = 86400.0
# two days ago at midnight UTC: records either side of it fall on two dates
MIDNIGHT = (datetime.fromtimestamp(NOW, UTC) - timedelta(days=2)).replace(
    hour=0, minute=0, second=0, microsecond=0
)


def rec(
    ago_s: float | None = None,
    *,
    at: float | None = None,
    cost: float,
    tenant: str = "acme",
    key: str | None = ACME_KEY_ID,
    model: str = "gpt-mock",
    feature: str | None = None,
    route: str | None = None,
    status: int = 200,
) -> RequestRecord:
    started = at if at is not None else NOW - (ago_s or 0.0)
    return RequestRecord(
        id=f"r{len(RECORDS)}",
        started_at=started,
        api="openai",
        operation="chat",
        tenant=tenant,
        key_id=key,
        request_model=model,
        provider="upstream",
        feature=feature,
        route=route,
        status_code=status,
        duration_ms=12.0,
        input_tokens=100,
        output_tokens=10,
        cost_usd=cost,
    )


RECORDS: list[RequestRecord] = []
for kwargs in (
    {"ago_s": HOUR, "cost": 1.0, "feature": "search", "route": "support"},
    {"ago_s": 2 * HOUR, "cost": 2.0, "feature": "chat"},
    {"ago_s": 3 * HOUR, "cost": 4.0, "model": "claude-mock", "status": 502},
    {"ago_s": HOUR, "cost": 8.0, "tenant": "globex", "key": GLOBEX_KEY_ID, "feature": "search"},
    {"ago_s": 20 * DAY, "cost": 16.0},
    {"ago_s": 40 * DAY, "cost": 32.0},  # outside every window
    {"at": MIDNIGHT.timestamp() - 30, "cost": 0.25, "model": "sim-1"},
    {"at": MIDNIGHT.timestamp() + 30, "cost": 0.5, "model": "sim-1"},
):
    RECORDS.append(rec(**kwargs))


def in_window(r: RequestRecord, days: float) -> bool:
    return r.started_at >= (NOW - days * DAY) // 60 * 60


BUDGETS = [
    {"scope": "tenant:*", "period": "month", "usd": 10, "on_exceed": "block"},
    {"scope": "key:*", "period": "day", "usd": 5, "on_exceed": "alert"},
    {"scope": f"key:{GLOBEX_KEY_ID}", "period": "month", "usd": 1, "on_exceed": "block"},
    {"scope": "feature:*", "period": "month", "usd": 3, "on_exceed": "block"},
    {"scope": "model:gpt-mock", "period": "month", "usd": 100, "on_exceed": "downgrade:sim-1"},
]


@dataclass
class Api:
    client: httpx.AsyncClient
    engine: Engine
    policy: Policy

    async def get(self, path: str, key: str | None = ADMIN_KEY, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=auth(key) if key else {})

    async def ok(self, path: str, key: str = ADMIN_KEY, **params: Any) -> dict[str, Any]:
        response = await self.get(path, key, **params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    engine = make_engine(f"sqlite:///{tmp_path}/costs.db")
    migrate(engine)
    TelemetryStore(engine).write(RECORDS)
    config = parse_config(
        {
            "providers": {"sim": {"kind": "simulator"}},
            "models": {m: {"provider": "sim"} for m in ("gpt-mock", "claude-mock", "sim-1")},
            "keys": KEYS,
            "budgets": BUDGETS,
        }
    )
    policy = Policy(config, MemoryState(), engine)
    await policy.start()
    routes = CostsAPI(engine, policy, KeyRing(config.keys)).routes()
    app = Starlette(routes=routes, exception_handlers=exception_handlers())  # as app.py does
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://trimtab") as client:
        yield Api(client, engine, policy)
    await policy.close()
    engine.dispose()


# -- /api/costs ------------------------------------------------------------------------------


def expected(
    group_by: str, days: float, tenant: str | None = None
) -> dict[str | None, dict[str, Any]]:
    out: dict[str | None, dict[str, Any]] = {}
    for r in RECORDS:
        if not in_window(r, days) or (tenant is not None and r.tenant != tenant):
            continue
        if group_by == "day":
            value: str | None = datetime.fromtimestamp(r.started_at, UTC).date().isoformat()
        else:
            value = {"model": r.request_model}.get(group_by, getattr(r, group_by, None))
        g = out.setdefault(
            value,
            {"cost_usd": 0.0, "requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0},
        )
        g["cost_usd"] += r.cost_usd or 0.0
        g["requests"] += 1
        g["errors"] += 1 if r.status_code >= 400 else 0
        g["input_tokens"] += r.input_tokens or 0
        g["output_tokens"] += r.output_tokens or 0
    return out


@pytest.mark.parametrize("group_by", ["model", "tenant", "feature", "route", "day"])
@pytest.mark.parametrize("window", ["30d", "7d", "90m"])
async def test_costs_per_group_match_the_records(api: Api, group_by: str, window: str) -> None:
    days = {"30d": 30, "7d": 7, "90m": 90 / 1440}[window]
    data = await api.ok("/api/costs", window=window, group_by=group_by)
    assert (data["window"], data["group_by"], data["tenant"]) == (window, group_by, None)
    got = {g[group_by]: {k: v for k, v in g.items() if k != group_by} for g in data["groups"]}
    want = expected(group_by, days)
    assert got.keys() == want.keys()
    for value, g in want.items():
        assert got[value] == {**g, "cost_usd": pytest.approx(g["cost_usd"])}
    total = data["total"]
    assert total["requests"] == sum(g["requests"] for g in want.values())
    assert total["cost_usd"] == pytest.approx(sum(g["cost_usd"] for g in want.values()))


async def test_costs_default_to_30_days_by_model_and_sort_by_spend(api: Api) -> None:
    data = await api.ok("/api/costs")
    assert (data["window"], data["group_by"]) == ("30d", "model")
    costs = [g["cost_usd"] for g in data["groups"]]
    assert costs == sorted(costs, reverse=True)
    assert data["groups"][0] == {
        "model": "gpt-mock",
        "cost_usd": 1.0 + 2.0 + 8.0 + 16.0,
        "requests": 4,
        "errors": 0,
        "input_tokens": 400,
        "output_tokens": 40,
    }


async def test_days_are_utc_dates_in_order(api: Api) -> None:
    data = await api.ok("/api/costs", group_by="day", window="7d")
    days = [g["day"] for g in data["groups"]]
    assert days == sorted(days)
    before = (MIDNIGHT - timedelta(days=1)).date().isoformat()
    after = MIDNIGHT.date().isoformat()
    by_day = {g["day"]: g for g in data["groups"]}
    assert by_day[before]["cost_usd"] == 0.25
    assert by_day[after]["cost_usd"] == 0.5


async def test_costs_are_scoped_to_the_callers_tenant(api: Api) -> None:
    mine = await api.ok("/api/costs", VIEWER_KEY, group_by="tenant")
    assert mine["tenant"] == "acme"
    assert [g["tenant"] for g in mine["groups"]] == ["acme"]
    theirs = await api.ok("/api/costs", GLOBEX_VIEWER_KEY, group_by="model")
    assert theirs["total"]["cost_usd"] == 8.0
    refused = await api.get("/api/costs", VIEWER_KEY, tenant="globex")
    assert refused.status_code == 403
    chosen = await api.ok("/api/costs", ADMIN_KEY, tenant="globex")
    assert chosen["total"]["cost_usd"] == 8.0


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "status"}, "group_by"),
        ({"window": "40d"}, "window"),
        ({"window": "x"}, "window"),
    ],
)
async def test_bad_parameters_are_400(api: Api, params: dict[str, str], param: str) -> None:
    response = await api.get("/api/costs", ADMIN_KEY, **params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("path", ["/api/costs", "/api/budgets", "/api/budget-events"])
async def test_readers_only(api: Api, path: str) -> None:
    assert (await api.get(path, None)).status_code == 401
    assert (await api.get(path, APP_KEY)).status_code == 403
    assert (await api.get(path, VIEWER_KEY)).status_code == 200


# -- /api/budgets ----------------------------------------------------------------------------


def spent_this(period: str, **match: Any) -> float:
    start = period_span(period, datetime.fromtimestamp(NOW, UTC)).start.timestamp()
    return sum(
        r.cost_usd or 0.0
        for r in RECORDS
        if r.started_at >= start // 60 * 60 and all(getattr(r, k) == v for k, v in match.items())
    )


def seen_this(period: str, kind: str, tenant: str | None = None) -> list[str]:
    """The scope values of a kind with spend recorded this period (as the API lists them)."""
    start = period_span(period, datetime.fromtimestamp(NOW, UTC)).start.timestamp()
    attr = {"key": "key_id", "tenant": "tenant", "feature": "feature"}[kind]
    return sorted(
        {
            f"{kind}:{getattr(r, attr)}"
            for r in RECORDS
            if r.started_at >= start // 60 * 60
            and getattr(r, attr)
            and (tenant is None or r.tenant == tenant)
        }
    )


async def test_budgets_show_each_scope_value_seeded_from_the_store(api: Api) -> None:
    data = (await api.ok("/api/budgets"))["data"]
    assert [b["scope"] for b in data] == [b["scope"] for b in BUDGETS]
    tenants = data[0]
    assert (tenants["period"], tenants["limit_usd"], tenants["on_exceed"]) == ("month", 10, "block")
    span = period_span("month", datetime.fromtimestamp(NOW, UTC))
    assert tenants["period_start"] == span.start.isoformat()
    assert tenants["period_end"] == span.end.isoformat()
    values = {v["scope"]: v for v in tenants["values"]}
    acme = spent_this("month", tenant="acme")
    assert values["tenant:acme"] == {
        "scope": "tenant:acme",
        "spent_usd": pytest.approx(acme),
        "reserved_usd": 0.0,
        "used": pytest.approx(acme / 10),
        "exceeded": acme >= 10,
    }
    assert values["tenant:globex"]["spent_usd"] == spent_this("month", tenant="globex")
    keys = {v["scope"]: v["spent_usd"] for v in data[1]["values"]}
    assert sorted(keys) == seen_this("day", "key")
    for key_id in (ACME_KEY_ID, GLOBEX_KEY_ID):
        if f"key:{key_id}" in keys:
            assert keys[f"key:{key_id}"] == pytest.approx(spent_this("day", key_id=key_id))
    assert [v["scope"] for v in data[2]["values"]] == [f"key:{GLOBEX_KEY_ID}"]
    assert data[2]["values"][0]["exceeded"] == (spent_this("month", key_id=GLOBEX_KEY_ID) >= 1)
    assert sorted(v["scope"] for v in data[3]["values"]) == seen_this("month", "feature")


async def test_budgets_show_reservations_in_flight(api: Api) -> None:
    ask = Ask("initech", None, "sim-1", None, None, 1000, 1000)
    price = Pricing(input_per_mtok=1000, output_per_mtok=1000)
    admission = await api.policy.admit(ask, lambda _: price)
    data = (await api.ok("/api/budgets", tenant="initech"))["data"]
    assert [b["scope"] for b in data] == ["tenant:*", "key:*"]
    assert data[0]["values"] == [
        {
            "scope": "tenant:initech",
            "spent_usd": 0.0,
            "reserved_usd": 2.0,
            "used": 0.0,
            "exceeded": False,
        }
    ]
    assert data[1]["values"] == []  # no key has spent anything for initech
    await api.policy.settle(admission, ask, 1.5, 1000, 500)
    data = (await api.ok("/api/budgets", tenant="initech"))["data"]
    assert data[0]["values"][0]["spent_usd"] == 1.5
    assert data[0]["values"][0]["reserved_usd"] == 0.0
    assert data[0]["values"][0]["used"] == 0.15


async def test_a_tenant_sees_only_its_own_and_its_keys_budgets(api: Api) -> None:
    data = (await api.ok("/api/budgets", VIEWER_KEY))["data"]
    assert [b["scope"] for b in data] == ["tenant:*", "key:*"]  # no global nor globex budgets
    assert [v["scope"] for v in data[0]["values"]] == ["tenant:acme"]
    assert sorted(v["scope"] for v in data[1]["values"]) == seen_this("day", "key", "acme")
    globex = (await api.ok("/api/budgets", GLOBEX_VIEWER_KEY))["data"]
    assert [b["scope"] for b in globex] == ["tenant:*", "key:*", f"key:{GLOBEX_KEY_ID}"]
    assert (await api.get("/api/budgets", VIEWER_KEY, tenant="globex")).status_code == 403


# -- /api/budget-events ----------------------------------------------------------------------


async def test_budget_events_newest_first_and_scoped(api: Api) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    for i, scope in enumerate(
        ["tenant:acme", f"key:{ACME_KEY_ID}", "tenant:globex", "feature:search", "tenant:acme"]
    ):
        threshold = 0.8 if i < 4 else 1.0
        event = BudgetEvent(
            t0 + timedelta(hours=i), scope, "month", start, threshold, 9.0, 10.0, "block"
        )
        assert insert_event(api.engine, event)
    every = (await api.ok("/api/budget-events"))["data"]
    assert [e["scope"] for e in every] == [
        "tenant:acme",
        "feature:search",
        "tenant:globex",
        f"key:{ACME_KEY_ID}",
        "tenant:acme",
    ]
    assert every[0] == {
        "id": 5,
        "at": (t0 + timedelta(hours=4)).isoformat(),
        "scope": "tenant:acme",
        "period": "month",
        "period_start": start.isoformat(),
        "threshold": 1.0,
        "spent_usd": 9.0,
        "limit_usd": 10.0,
        "on_exceed": "block",
    }
    since = await api.ok("/api/budget-events", since=(t0 + timedelta(hours=2)).isoformat())
    assert len(since["data"]) == 3
    acme = (await api.ok("/api/budget-events", VIEWER_KEY))["data"]
    assert [e["scope"] for e in acme] == ["tenant:acme", f"key:{ACME_KEY_ID}", "tenant:acme"]
    globex = (await api.ok("/api/budget-events", ADMIN_KEY, tenant="globex"))["data"]
    assert [e["scope"] for e in globex] == ["tenant:globex"]
    assert len((await api.ok("/api/budget-events", limit="2"))["data"]) == 2
    assert (await api.get("/api/budget-events", ADMIN_KEY, since="yesterday")).status_code == 400


# -- mounted in the gateway ------------------------------------------------------------------


def call(client: httpx.Client, key: str, model: str, feature: str | None = None) -> None:
    headers = auth(key)
    if feature:
        headers["x-trimtab-feature"] = feature
    body = {"model": model, "messages": [{"role": "user", "content": "how much is this"}]}
    response = client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text


def test_costs_through_the_gateway(gateway: GatewayFactory) -> None:
    running = gateway(keys=KEYS)
    assert isinstance(running.server_app.state.policy, Policy)
    with httpx.Client(base_url=running.url, timeout=30) as client:
        for _ in range(3):
            call(client, APP_KEY, "gpt-mock", feature="search")
        call(client, APP_KEY, "claude-mock")
        call(client, GLOBEX_APP_KEY, "gpt-mock")
        assert running.wait_for_rows(5) == 5
        rows = client.get("/api/requests", headers=auth(ADMIN_KEY)).json()["data"]
        response = client.get("/api/costs", params={"group_by": "model"}, headers=auth(ADMIN_KEY))
        assert response.status_code == 200, response.text
        groups = {g["model"]: g for g in response.json()["groups"]}
        for model in ("gpt-mock", "claude-mock"):
            mine = [r for r in rows if r["gen_ai.request.model"] == model]
            assert groups[model]["requests"] == len(mine)
            assert groups[model]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in mine))
            assert groups[model]["cost_usd"] > 0
        features = client.get(
            "/api/costs", params={"group_by": "feature"}, headers=auth(VIEWER_KEY)
        )
        assert {g["feature"]: g["requests"] for g in features.json()["groups"]} == {
            "search": 3,
            None: 1,
        }


def test_a_restarted_gateway_knows_this_periods_spend(gateway: GatewayFactory) -> None:
    first = gateway(keys=KEYS)
    with httpx.Client(base_url=first.url, timeout=30) as client:
        for _ in range(2):
            call(client, APP_KEY, "claude-mock")
        assert first.wait_for_rows(2) == 2
        rows = client.get("/api/requests", headers=auth(ADMIN_KEY)).json()["data"]
    spent = sum(r["cost_usd"] for r in rows)
    budget = {"scope": "tenant:acme", "period": "day", "usd": 1.0, "on_exceed": "block"}
    second = gateway(keys=KEYS, budgets=[budget])
    with httpx.Client(base_url=second.url, timeout=30) as client:
        data = client.get("/api/budgets", headers=auth(VIEWER_KEY)).json()["data"]
    assert data[0]["values"] == [
        {
            "scope": "tenant:acme",
            "spent_usd": pytest.approx(spent),
            "reserved_usd": 0.0,
            "used": pytest.approx(spent),
            "exceeded": False,
        }
    ]
