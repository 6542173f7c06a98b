"""The Policy service against MemoryState and a throwaway Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from tests.policy.support import PolicyFactory, StateFactory, config, pricing
from tests.support import about
from trimtab.alerts.events import BudgetEvent, insert_event, list_events
from trimtab.auth.keyring import key_hash, key_id_of
from trimtab.errors import LimitExceeded, status_of
from trimtab.policy.budgets import budget_key, period_span
from trimtab.policy.service import Admission, Ask, Policy
from trimtab.state.base import Reservation
from trimtab.state.memory import MemoryState
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

NOV_30 = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
MONTH_KEY = "budget:tenant:acme:month:2026-11"


def fixed(at: float = NOV_30) -> Any:
    return lambda: at


def ask(
    model: str = "gpt-big",
    *,
    tenant: str = "acme",
    key: str | None = "key_1",
    feature: str | None = None,
    tokens: int = 1000,
    max_out: int | None = 500,
) -> Ask:
    return Ask(tenant, key, model, feature, None, tokens, max_out)


def monthly(usd: float, on: str = "block", scope: str = "tenant:acme") -> dict[str, Any]:
    return {"scope": scope, "period": "month", "usd": usd, "on_exceed": on}


async def spend(policy: Policy, usd: float, model: str = "gpt-big", **kw: Any) -> Admission:
    a = ask(model, **kw)
    admission = await policy.admit(a, pricing)
    await policy.settle(admission, a, usd, 1000, 500)
    return admission


async def status(policy: Policy, key: str) -> Reservation | None:
    return await policy._state.budget_status(key)


# -- budgets ---------------------------------------------------------------------------------


async def test_reserve_then_settle_the_real_cost(new_policy: PolicyFactory) -> None:
    policy = await new_policy(budgets=[monthly(100)], clock=fixed())
    admission = await policy.admit(ask(tokens=1000, max_out=500), pricing)
    assert admission.model == "gpt-big" and admission.downgraded_from is None
    estimate = (1000 * 10 + 500 * 30) / 1e6
    assert await status(policy, MONTH_KEY) == Reservation(True, 0.0, about(estimate))
    await policy.settle(admission, ask(), 0.01, 900, 100)
    assert await status(policy, MONTH_KEY) == Reservation(True, about(0.01), 0.0)
    await policy.settle(admission, ask(), 0.01, 900, 100)  # a second settle does nothing
    assert await status(policy, MONTH_KEY) == Reservation(True, about(0.01), 0.0)


async def test_without_max_tokens_the_default_output_is_reserved(
    new_policy: PolicyFactory,
) -> None:
    policy = await new_policy(budgets=[monthly(100)], clock=fixed(), default_output_tokens=2000)
    await policy.admit(ask(tokens=0, max_out=None), pricing)
    reserved = (await status(policy, MONTH_KEY)).reserved  # type: ignore[union-attr]
    assert reserved == pytest.approx(2000 * 30 / 1e6)


async def test_a_failed_call_releases_its_reservation(new_policy: PolicyFactory) -> None:
    policy = await new_policy(budgets=[monthly(100)], clock=fixed())
    admission = await policy.admit(ask(), pricing)
    await policy.settle(admission, ask(), None, None, None)
    assert await status(policy, MONTH_KEY) == Reservation(True, 0.0, 0.0)


async def test_a_spent_budget_blocks_with_the_budget_and_period_end(
    new_policy: PolicyFactory,
) -> None:
    policy = await new_policy(budgets=[monthly(100)], clock=fixed(NOV_30 + 3600))
    await spend(policy, 100.02)
    with pytest.raises(LimitExceeded) as caught:
        await policy.admit(ask(), pricing)
    err = caught.value
    assert (status_of(err), err.code) == (429, "budget_exceeded")
    assert err.message == (
        "budget tenant:acme (month, $100.00) is spent: $100.02 settled; "
        "it resets at 2026-12-01T00:00:00Z"
    )
    assert err.retry_after == str(86400 - 3600)
    # other tenants are not affected
    assert (await policy.admit(ask(tenant="globex"), pricing)).model == "gpt-big"


async def test_reservations_in_flight_block_with_a_short_retry(new_policy: PolicyFactory) -> None:
    policy = await new_policy(budgets=[monthly(0.02)], clock=fixed())
    first = await policy.admit(ask(tokens=1000, max_out=500), pricing)  # reserves $0.025
    with pytest.raises(LimitExceeded) as caught:
        await policy.admit(ask(), pricing)
    assert caught.value.retry_after == "1"
    assert "is taken: $0.00 settled + $0.03 reserved by requests in flight" in caught.value.message
    await policy.settle(first, ask(), 0.001, 100, 10)
    assert (await policy.admit(ask(), pricing)).model == "gpt-big"


async def test_star_scopes_budget_each_value_separately(new_policy: PolicyFactory) -> None:
    policy = await new_policy(budgets=[monthly(1, scope="key:*")], clock=fixed())
    await spend(policy, 1.5, key="key_1")
    with pytest.raises(LimitExceeded, match="budget key:key_1 "):
        await policy.admit(ask(key="key_1"), pricing)
    assert (await policy.admit(ask(key="key_2"), pricing)).model == "gpt-big"
    assert (await policy.admit(ask(key=None), pricing)).model == "gpt-big"  # no key, no budget


async def test_downgrade_serves_the_cheaper_model(new_policy: PolicyFactory) -> None:
    policy = await new_policy(budgets=[monthly(1, on="downgrade:gpt-small")], clock=fixed())
    await spend(policy, 1.2)
    admission = await policy.admit(ask("gpt-big", tokens=1000, max_out=500), pricing)
    assert (admission.model, admission.downgraded_from) == ("gpt-small", "gpt-big")
    # reserved at the downgrade model's prices, still charged to the tenant
    small_estimate = (1000 * 1 + 500 * 2) / 1e6
    assert (await status(policy, MONTH_KEY)).reserved == pytest.approx(small_estimate)  # type: ignore[union-attr]
    await policy.settle(admission, ask(), 0.001, 1000, 500)
    assert (await status(policy, MONTH_KEY)).spent == pytest.approx(1.201)  # type: ignore[union-attr]
    # asking for the cheap model directly is not a downgrade
    direct = await policy.admit(ask("gpt-small"), pricing)
    assert (direct.model, direct.downgraded_from) == ("gpt-small", None)


async def test_downgrade_checks_the_target_models_own_budget(new_policy: PolicyFactory) -> None:
    policy = await new_policy(
        budgets=[
            monthly(1, on="downgrade:gpt-small"),
            monthly(0.5, scope="model:gpt-small"),
        ],
        clock=fixed(),
    )
    await spend(policy, 1.2)
    await spend(policy, 0.6, model="gpt-small")
    with pytest.raises(LimitExceeded) as caught:
        await policy.admit(ask("gpt-big"), pricing)
    assert caught.value.code == "budget_exceeded"
    assert caught.value.message.startswith("budget model:gpt-small (month, $0.50) is spent")
    # the refused downgrade left no reservation behind anywhere
    assert (await status(policy, MONTH_KEY)).reserved == 0.0  # type: ignore[union-attr]
    key = "budget:model:gpt-small:month:2026-11"
    assert (await status(policy, key)).reserved == 0.0  # type: ignore[union-attr]


async def test_downgrades_that_loop_block(new_policy: PolicyFactory) -> None:
    policy = await new_policy(
        budgets=[
            monthly(1, on="downgrade:gpt-small"),
            monthly(1, on="downgrade:gpt-big", scope="model:gpt-small"),
        ],
        clock=fixed(),
    )
    await spend(policy, 1.2)
    await spend(policy, 1.2, model="gpt-small")
    with pytest.raises(LimitExceeded) as caught:
        await policy.admit(ask("gpt-big"), pricing)
    assert caught.value.message.startswith("budget model:gpt-small (month, $1.00) is spent")
    assert "its downgrade model 'gpt-big' is over budget as well" in caught.value.message


async def test_alert_budgets_never_block(new_policy: PolicyFactory) -> None:
    policy = await new_policy(budgets=[monthly(0.001, on="alert")], clock=fixed())
    for _ in range(5):
        await spend(policy, 0.01)
    assert (await status(policy, MONTH_KEY)).spent == pytest.approx(0.05)  # type: ignore[union-attr]


async def test_a_block_budget_beside_an_alert_budget_on_one_scope(
    new_policy: PolicyFactory,
) -> None:
    policy = await new_policy(
        budgets=[monthly(0.5, on="alert"), monthly(1, scope="tenant:*")], clock=fixed()
    )
    await spend(policy, 0.7)  # past the alert budget: still admitted
    await spend(policy, 0.7)  # admitted (0.7 < 1), then past the block budget
    assert (await status(policy, MONTH_KEY)).spent == pytest.approx(1.4)  # type: ignore[union-attr]
    with pytest.raises(LimitExceeded, match=r"tenant:acme \(month, \$1.00\)"):
        await policy.admit(ask(), pricing)


async def test_day_and_month_budgets_are_separate_accounts(new_policy: PolicyFactory) -> None:
    day = {"scope": "tenant:acme", "period": "day", "usd": 1, "on_exceed": "block"}
    policy = await new_policy(budgets=[monthly(10), day], clock=fixed())
    await spend(policy, 1.5)
    with pytest.raises(LimitExceeded, match=r"\(day, \$1.00\).*resets at 2026-12-01T00:00:00Z"):
        await policy.admit(ask(), pricing)
    assert (await status(policy, MONTH_KEY)).spent == pytest.approx(1.5)  # type: ignore[union-attr]
    assert (await status(policy, "budget:tenant:acme:day:2026-11-30")).spent == pytest.approx(1.5)  # type: ignore[union-attr]


async def test_a_request_settles_into_the_period_it_reserved_in(
    new_policy: PolicyFactory,
) -> None:
    now = [NOV_30 + 86399.5]  # half a second before December
    policy = await new_policy(budgets=[monthly(100)], clock=lambda: now[0])
    admission = await policy.admit(ask(), pricing)
    now[0] += 1  # the call ends in December
    await policy.settle(admission, ask(), 0.02, 1000, 10)
    assert (await status(policy, MONTH_KEY)).spent == pytest.approx(0.02)  # type: ignore[union-attr]
    assert await status(policy, "budget:tenant:acme:month:2026-12") is None


# -- seeding from the store ------------------------------------------------------------------


def record(
    started_at: float, cost: float, tenant: str = "acme", key: str = "key_1"
) -> RequestRecord:
    return RequestRecord(
        id=f"r{started_at}{cost}{tenant}",
        started_at=started_at,
        api="openai",
        operation="chat",
        tenant=tenant,
        key_id=key,
        request_model="gpt-big",
        provider="sim",
        cost_usd=cost,
        input_tokens=10,
        output_tokens=10,
    )


async def test_start_seeds_this_periods_spend_from_the_store(
    new_policy: PolicyFactory, new_state: StateFactory, sqlite_engine: Engine
) -> None:
    now = time.time()
    span = period_span("month", datetime.fromtimestamp(now, UTC))
    start = span.start.timestamp()
    TelemetryStore(sqlite_engine).write(
        [
            record(start - 1, 50.0),  # last month: not counted
            record(start, 1.0),
            record(now - 5, 2.5),
            record(now - 5, 4.0, tenant="globex", key="key_9"),
        ]
    )
    state = new_state()
    policy = await new_policy(
        state,
        budgets=[
            monthly(100, scope="tenant:*"),
            monthly(100, scope="key:key_1"),
            monthly(100, scope="model:*"),
        ],
    )
    assert (await state.budget_status(budget_key("tenant:acme", span))).spent == 3.5  # type: ignore[union-attr]
    assert (await state.budget_status(budget_key("tenant:globex", span))).spent == 4.0  # type: ignore[union-attr]
    assert (await state.budget_status(budget_key("key:key_1", span))).spent == 3.5  # type: ignore[union-attr]
    assert await state.budget_status(budget_key("key:key_9", span)) is None  # not budgeted
    assert (await state.budget_status(budget_key("model:gpt-big", span))).spent == 7.5  # type: ignore[union-attr]
    # a second process starting later does not overwrite what is known by then
    await spend(policy, 1.0)
    await new_policy(state, budgets=[monthly(100, scope="tenant:*")])
    assert (await state.budget_status(budget_key("tenant:acme", span))).spent == 4.5  # type: ignore[union-attr]


# -- alerts ----------------------------------------------------------------------------------


async def test_threshold_crossings_are_recorded_once(
    new_policy: PolicyFactory, sqlite_engine: Engine
) -> None:
    policy = await new_policy(budgets=[monthly(1, on="alert")], clock=fixed())
    for cost in (0.5, 0.35, 0.2, 0.1, 0.5):  # 0.5, 0.85, 1.05, 1.15, 1.65
        await spend(policy, cost)
    await policy.close()
    events = list_events(sqlite_engine, None, None, 100)
    assert [(e["scope"], e["threshold"]) for e in events] == [
        ("tenant:acme", 1.1),
        ("tenant:acme", 1.0),
        ("tenant:acme", 0.8),
    ]
    assert [round(e["spent_usd"], 6) for e in events] == [1.15, 1.05, 0.85]
    assert events[0]["period_start"] == "2026-11-01T00:00:00+00:00"
    assert events[0]["on_exceed"] == "alert" and events[0]["limit_usd"] == 1.0


def test_a_crossing_is_stored_once(sqlite_engine: Engine) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    event = BudgetEvent(datetime.now(UTC), "tenant:acme", "month", start, 0.8, 80.0, 100.0, "block")
    assert insert_event(sqlite_engine, event) is True
    assert insert_event(sqlite_engine, event) is False
    assert len(list_events(sqlite_engine, None, None, 10)) == 1


# -- rate limits -----------------------------------------------------------------------------


async def test_rpm_refuses_with_the_limit_and_retry_after(new_policy: PolicyFactory) -> None:
    policy = await new_policy(limits=[{"scope": "tenant:acme", "rpm": 2}])
    await policy.admit(ask(), pricing)
    await policy.admit(ask(), pricing)
    with pytest.raises(LimitExceeded) as caught:
        await policy.admit(ask(), pricing)
    err = caught.value
    assert (status_of(err), err.code) == (429, "rate_limited")
    assert err.retry_after is not None and 1 <= int(err.retry_after) <= 120
    assert err.message == (
        f"rate limit exceeded: tenant:acme may send 2 requests per minute; "
        f"retry in {err.retry_after} s"
    )
    assert (await policy.admit(ask(tenant="globex"), pricing)).model == "gpt-big"


async def test_key_star_limits_each_key(new_policy: PolicyFactory) -> None:
    policy = await new_policy(limits=[{"scope": "key:*", "rpm": 1}])
    await policy.admit(ask(key="key_1"), pricing)
    await policy.admit(ask(key="key_2"), pricing)
    with pytest.raises(
        LimitExceeded, match=r"key:key_1 may send 1 requests per minute \(limit 'key:\*'\)"
    ):
        await policy.admit(ask(key="key_1"), pricing)


async def test_a_refused_request_counts_against_no_limit(new_policy: PolicyFactory) -> None:
    policy = await new_policy(
        limits=[{"scope": "key:*", "rpm": 100}, {"scope": "tenant:acme", "rpm": 2}],
        budgets=[monthly(100)],
        clock=fixed(),
    )
    for _ in range(2):
        await policy.admit(ask(), pricing)
    reserved = (await status(policy, MONTH_KEY)).reserved  # type: ignore[union-attr]
    for _ in range(3):
        with pytest.raises(LimitExceeded, match="tenant:acme may send 2"):
            await policy.admit(ask(), pricing)
    # the key's window gave back what the refused requests took; the budget holds no more
    assert await policy._state.window_used("rl:rpm:key:key_1", 60) == pytest.approx(2, abs=0.01)
    assert (await status(policy, MONTH_KEY)).reserved == pytest.approx(reserved)  # type: ignore[union-attr]


async def test_tpm_counts_real_tokens_after_the_call(new_policy: PolicyFactory) -> None:
    policy = await new_policy(limits=[{"scope": "model:*", "tpm": 1000}])
    first = await policy.admit(ask(tokens=5000), pricing)  # the estimate is not counted
    second = await policy.admit(ask(), pricing)  # nothing settled yet: admitted
    await policy.settle(first, ask(), 0.01, 600, 500)
    with pytest.raises(LimitExceeded) as caught:
        await policy.admit(ask(), pricing)
    err = caught.value
    assert (status_of(err), err.code) == (429, "rate_limited")
    assert err.message.startswith(
        "token rate limit exceeded: model:gpt-big used 1100 of 1000 tokens per minute "
        "(limit 'model:*'); retry in "
    )
    assert err.retry_after is not None and 1 <= int(err.retry_after) <= 120
    assert (await policy.admit(ask("gpt-small"), pricing)).model == "gpt-small"
    await policy.settle(second, ask(), 0.01, None, None)  # no usage: nothing added


async def test_limits_apply_to_the_model_actually_served(new_policy: PolicyFactory) -> None:
    policy = await new_policy(
        budgets=[monthly(1, on="downgrade:gpt-small")],
        limits=[{"scope": "model:gpt-small", "rpm": 1}],
        clock=fixed(),
    )
    await spend(policy, 2.0)  # gpt-big: not limited
    await policy.admit(ask("gpt-big"), pricing)  # downgraded: takes gpt-small's one request
    with pytest.raises(LimitExceeded, match="model:gpt-small may send 1"):
        await policy.admit(ask("gpt-big"), pricing)


# -- no configuration, failing state ---------------------------------------------------------


class BrokenState(MemoryState):
    async def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("state down")

    window_acquire = window_add = window_used = _fail
    budget_reserve = budget_settle = _fail


async def test_a_failing_state_lets_requests_through(sqlite_engine: Engine) -> None:
    registry = CollectorRegistry()
    policy = Policy(
        config(limits=[{"scope": "tenant:*", "rpm": 1, "tpm": 1}], budgets=[monthly(0.000001)]),
        BrokenState(),
        sqlite_engine,
        registry=registry,
    )
    await policy.start()
    try:
        for _ in range(3):
            admission = await policy.admit(ask(), pricing)
            assert admission.holds == ()
            await policy.settle(admission, ask(), 1.0, 10, 10)
    finally:
        await policy.close()
    errors = registry.get_sample_value("trimtab_policy_state_errors_total")
    assert errors is not None and errors >= 9


async def test_without_limits_or_budgets_admit_touches_nothing(sqlite_engine: Engine) -> None:
    policy = Policy(config(), BrokenState(), sqlite_engine)
    assert not policy.enabled
    admission = await policy.admit(ask(), pricing)
    assert (admission.model, admission.holds, admission.tpm_keys) == ("gpt-big", (), ())
    await policy.settle(admission, ask(), 1.0, 1, 1)


async def test_configured_keys_belong_to_their_tenant(sqlite_engine: Engine) -> None:
    cfg = config(keys=[{"key": "tt-acme-000001", "tenant": "acme"}])
    policy = Policy(cfg, MemoryState(), sqlite_engine)
    assert await policy.report.tenant_key_ids("acme") == {key_id_of(key_hash("tt-acme-000001"))}
    assert await policy.report.tenant_key_ids("globex") == set()
