"""Folding request records into per-minute rollups, grouping and summarising them."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rollups import GROUPABLE, Rollup, RollupKey, fold, group, key_of, minute_of
from trimtab.telemetry.sketch import from_bytes, quantile, to_bytes

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()  # on a minute boundary


def rec(n: int, **kw: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": f"req_{n:04d}",
        "started_at": T0 + n,
        "api": "openai",
        "operation": "chat",
        "tenant": "acme",
        "request_model": "gpt-mock",
        "provider": "upstream",
        "status_code": 200,
        "duration_ms": 100.0 + n,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.001,
    }
    fields.update(kw)
    return RequestRecord(**fields)


def test_minute_of_truncates_to_the_minute_in_utc() -> None:
    assert minute_of(T0) == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert minute_of(T0 + 59.999) == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert minute_of(T0 + 60) == datetime(2025, 3, 1, 12, 1, tzinfo=UTC)
    assert minute_of(T0 - 0.001) == datetime(2025, 3, 1, 11, 59, tzinfo=UTC)
    assert minute_of(T0).tzinfo is UTC


def test_key_of_uses_empty_string_for_missing_dimensions() -> None:
    r = rec(1, request_model=None, provider=None, feature=None, route=None, version=None)
    assert key_of(r) == (minute_of(T0), "", "", "acme", "", 200, "", "")
    r = rec(2, feature="search", route="r1", version="v2", status_code=502)
    assert key_of(r) == (minute_of(T0), "gpt-mock", "upstream", "acme", "search", 502, "r1", "v2")


def test_key_positions_match_groupable() -> None:
    r = rec(1, feature="f", route="r", version="v", status_code=418)
    key = key_of(r)
    assert key[GROUPABLE["model"]] == "gpt-mock"
    assert key[GROUPABLE["provider"]] == "upstream"
    assert key[GROUPABLE["tenant"]] == "acme"
    assert key[GROUPABLE["feature"]] == "f"
    assert key[GROUPABLE["status"]] == 418
    assert key[GROUPABLE["route"]] == "r"
    assert key[GROUPABLE["version"]] == "v"


def test_fold_splits_by_minute_and_every_dimension() -> None:
    records = [
        rec(1),
        rec(2),
        rec(3, started_at=T0 + 61),  # next minute
        rec(4, request_model="sim-1"),
        rec(5, tenant="globex"),
        rec(6, status_code=502),
        rec(7, feature="search"),
    ]
    folded = fold(records)
    assert len(folded) == 6
    assert sum(r.count for r in folded.values()) == len(records)
    base = key_of(rec(1))
    assert folded[base].count == 2
    assert folded[key_of(records[2])].count == 1
    assert folded[key_of(records[2])] is not folded[base]


def test_fold_empty() -> None:
    assert fold([]) == {}


def test_rollup_add_counts_errors_tokens_cost_and_sketches() -> None:
    r = Rollup()
    r.add(rec(1, duration_ms=100.0, ttft_ms=40.0))
    r.add(rec(2, status_code=502, input_tokens=None, output_tokens=None, cost_usd=None))
    r.add(rec(3, status_code=429, duration_ms=-5.0))  # clock skew never yields a negative bin
    r.add(rec(4, status_code=399))
    assert r.count == 4
    assert r.errors == 2  # >= 400 only
    assert r.input_tokens == 30
    assert r.output_tokens == 15
    assert r.cost_usd == pytest.approx(0.003)
    assert r.latency.count == 4
    assert r.ttft.count == 1  # only the record that had a ttft
    assert quantile(r.latency, 0.0) == 0.0


def test_rollup_merge_adds_everything() -> None:
    a, b = Rollup(), Rollup()
    for n in range(3):
        a.add(rec(n, ttft_ms=10.0))
    for n in range(3, 8):
        b.add(rec(n, status_code=500))
    a.merge(b)
    assert a.count == 8
    assert a.errors == 5
    assert a.input_tokens == 80
    assert a.output_tokens == 40
    assert a.cost_usd == pytest.approx(0.008)
    assert a.latency.count == 8
    assert a.ttft.count == 3


def test_rollup_merge_with_empty_and_read_back_sketches() -> None:
    a = Rollup()
    a.merge(Rollup())
    assert a.count == 0
    assert a.latency.count == 0
    b = Rollup()
    b.add(rec(1, ttft_ms=5.0))
    stored = Rollup(
        count=b.count,
        errors=b.errors,
        input_tokens=b.input_tokens,
        output_tokens=b.output_tokens,
        cost_usd=b.cost_usd,
        latency=from_bytes(to_bytes(b.latency)),
        ttft=from_bytes(to_bytes(b.ttft)),
    )
    a.merge(stored)
    a.merge(stored)
    assert a.count == 2
    assert a.latency.count == 2
    assert a.ttft.count == 2


def test_summary_of_empty_rollup() -> None:
    s = Rollup().summary()
    assert s == {
        "count": 0,
        "errors": 0,
        "error_rate": 0.0,
        "latency_ms": {"p50": None, "p95": None, "p99": None},
        "ttft_ms": {"p50": None, "p95": None, "p99": None},
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
    }


def test_summary_values() -> None:
    r = Rollup()
    for n in range(100):
        r.add(rec(n, duration_ms=float(n + 1), status_code=500 if n % 4 == 0 else 200))
    s = r.summary()
    assert s["count"] == 100
    assert s["errors"] == 25
    assert s["error_rate"] == 0.25
    lat = s["latency_ms"]
    # latencies 1..100: the rank-based quantiles are 50, 95, 99 within 1 %
    assert math.isclose(lat["p50"], 50.0, rel_tol=0.01)
    assert math.isclose(lat["p95"], 95.0, rel_tol=0.01)
    assert math.isclose(lat["p99"], 99.0, rel_tol=0.01)
    assert lat["p50"] <= lat["p95"] <= lat["p99"]
    assert s["ttft_ms"] == {"p50": None, "p95": None, "p99": None}
    assert s["input_tokens"] == 1000
    assert s["output_tokens"] == 500
    assert s["cost_usd"] == round(100 * 0.001, 10)


def test_summary_rounds_cost_to_ten_places() -> None:
    r = Rollup(cost_usd=0.1 + 0.2)
    assert r.summary()["cost_usd"] == 0.3


def _rows(records: list[RequestRecord]) -> list[tuple[RollupKey, Rollup]]:
    return list(fold(records).items())


def test_group_by_model_merges_minutes_and_sorts_largest_first() -> None:
    records = [
        rec(1),
        rec(2, started_at=T0 + 120),
        rec(3, started_at=T0 + 600, status_code=500),
        rec(4, request_model="sim-1"),
        rec(5, request_model=None),
        rec(6, request_model=None),
    ]
    groups = group(_rows(records), "model")
    assert [g["model"] for g in groups] == ["gpt-mock", None, "sim-1"]
    assert [g["count"] for g in groups] == [3, 2, 1]
    top = groups[0]
    assert top["errors"] == 1
    assert top["error_rate"] == pytest.approx(1 / 3)
    assert top["input_tokens"] == 30
    assert top["output_tokens"] == 15
    assert top["cost_usd"] == pytest.approx(0.003)


def test_group_ties_are_ordered_by_label() -> None:
    records = [rec(1, tenant="zeta"), rec(2, tenant="alpha"), rec(3, tenant="mid")]
    groups = group(_rows(records), "tenant")
    assert [g["tenant"] for g in groups] == ["alpha", "mid", "zeta"]


@pytest.mark.parametrize("group_by", sorted(GROUPABLE))
def test_group_totals_equal_the_records(group_by: str) -> None:
    records = [
        rec(
            n,
            started_at=T0 + 17 * n,
            request_model=["gpt-mock", "sim-1", None][n % 3],
            provider=["upstream", "sim"][n % 2],
            tenant=["acme", "globex"][n % 2],
            feature=[None, "search", "chat"][n % 3],
            status_code=[200, 200, 502, 429][n % 4],
            route=[None, "r1"][n % 2],
            version=["v1", None, "v2"][n % 3],
            ttft_ms=float(n) if n % 5 == 0 else None,
        )
        for n in range(40)
    ]
    groups = group(_rows(records), group_by)
    assert sum(g["count"] for g in groups) == 40
    assert sum(g["errors"] for g in groups) == sum(1 for r in records if r.is_error)
    assert sum(g["input_tokens"] for g in groups) == 400
    labels = [g[group_by] for g in groups]
    assert len(labels) == len(set(labels))
    for g in groups:
        assert set(g) == {group_by, *Rollup().summary()}
        assert g["count"] > 0
        lat = g["latency_ms"]
        assert lat["p50"] <= lat["p95"] <= lat["p99"]
    counts = [g["count"] for g in groups]
    assert counts == sorted(counts, reverse=True)


def test_group_of_nothing_is_empty() -> None:
    assert group([], "model") == []


def test_group_status_labels_are_ints() -> None:
    groups = group(_rows([rec(1), rec(2, status_code=502)]), "status")
    assert sorted(g["status"] for g in groups) == [200, 502]


def test_a_rollup_counts_the_requests_a_guardrail_fired_on() -> None:
    def guarded(*fired: str) -> dict[str, Any]:
        checks = [{"check": "input.pii", "fired": "input.pii" in fired}]
        return {"guardrails": {"checks": checks, "fired": list(fired), "blocked": None}}

    records = [
        rec(1, attributes=guarded("input.pii")),
        rec(2, attributes=guarded()),  # ran, nothing fired (its check's flag is false)
        rec(3),  # no attributes
        rec(4, attributes={"other": 1}),
        rec(5, status_code=400, attributes=guarded("input.injection")),
        rec(6, attributes={"guardrails": None}),
    ]
    (rollup_200, rollup_400) = (fold(records)[key_of(r)] for r in (records[0], records[4]))
    assert (rollup_200.count, rollup_200.guardrail_fired) == (5, 1)
    assert (rollup_400.count, rollup_400.guardrail_fired) == (1, 1)
    merged = Rollup()
    merged.merge(rollup_200)
    merged.merge(rollup_400)
    assert merged.guardrail_fired == 2
