"""Distinct sessions from merged HLL sketches (telemetry/sessions.py): against exact counts
in seeded simulations, the sketches split as the rollups split them (sessions spanning
many rows), stored and merged through their bytes as the writer and the reads do."""

from __future__ import annotations

import random

import pytest
from scipy.stats import binom

from trimtab.telemetry.sessions import (
    RELATIVE_ERROR,
    SessionUnion,
    add_session,
    merged_bytes,
    new_sessions,
    per_session,
    sessions_of,
    union_of,
)


def _rows(ids: list[str], rows: int, rng: random.Random, tenant: str = "acme") -> list[bytes]:
    """Each id's requests (1 to 4) spread over random rows in two batches; each row's
    sketch written as the writer does: a batch's sketch merged into the stored bytes."""
    stored: list[bytes | None] = [None] * rows
    for batch in range(2):
        deltas = [new_sessions() for _ in range(rows)]
        for ident in ids:
            for _ in range(rng.randint(1 - batch, 2)):  # at least one request in the first
                add_session(deltas[rng.randrange(rows)], tenant, ident)
        for k, delta in enumerate(deltas):
            if not delta.is_empty():
                stored[k] = merged_bytes(stored[k], delta)
    return [raw for raw in stored if raw is not None]


def _estimate(raws: list[bytes]) -> SessionUnion:
    union = SessionUnion()
    union.add_all(raws)
    return union


def test_exact_for_small_counts_and_tenants_are_apart() -> None:
    rng = random.Random(1)
    for n in (1, 7, 50, 200):
        ids = [f"session-{n}-{i}" for i in range(n)]
        assert _estimate(_rows(ids, 30, rng)).count().estimate == pytest.approx(n, abs=0.01)
    # the same id in two tenants: two sessions; twice in one: one
    a, b = new_sessions(), new_sessions()
    add_session(a, "acme", "s1")
    add_session(a, "acme", "s1")
    add_session(b, "globex", "s1")
    merged = SessionUnion()
    merged.add_sketch(union_of(a, b))
    assert merged.count().estimate == pytest.approx(2, abs=0.01)
    assert SessionUnion().count().estimate == 0 and SessionUnion().to_bytes() is None


def test_relative_error_against_exact_counts() -> None:
    """100 seeded trials of 20,000 sessions (5 times the registers: past the small-count
    regime, where the error is smaller) over 60 rows: the errors' root mean square is
    within 30 % of the stated relative standard error (its own sampling error at 100
    trials is about 7 %), and the two-sigma interval covers the truth at least as often
    as a binomial of p = 0.954 does at its 0.1 % quantile."""
    rng = random.Random(14)
    n, trials = 20_000, 100
    errors = []
    covered = 0
    for t in range(trials):
        ids = [f"t{t}-s{i}" for i in range(n)]
        count = _estimate(_rows(ids, 60, rng)).count()
        errors.append(count.estimate / n - 1)
        covered += count.low <= n <= count.high
    rms = (sum(e * e for e in errors) / trials) ** 0.5
    assert 0.7 * RELATIVE_ERROR <= rms <= 1.3 * RELATIVE_ERROR, rms
    assert covered >= binom.ppf(0.001, trials, 0.954), covered
    assert max(abs(e) for e in errors) < 5 * RELATIVE_ERROR


def test_large_counts_merge_in_any_order() -> None:
    rng = random.Random(3)
    ids = [f"s{i}" for i in range(50_000)]
    raws = _rows(ids, 24, rng)
    forward, backward = _estimate(raws), _estimate(raws[::-1])
    assert forward.count().estimate == pytest.approx(backward.count().estimate)
    assert forward.count().estimate == pytest.approx(50_000, rel=5 * RELATIVE_ERROR)
    # a union stored and read back counts the same
    again = SessionUnion()
    again.add(forward.to_bytes())
    assert again.count().estimate == pytest.approx(forward.count().estimate)
    assert sessions_of(None) is None and merged_bytes(None, None) is None


def test_cost_per_session_and_its_interval() -> None:
    union = SessionUnion()
    sketch = new_sessions()
    for i in range(4):
        add_session(sketch, "acme", f"s{i}")
    union.add_sketch(sketch)
    count = union.count()
    per = per_session(2.0, count)
    assert per is not None
    assert per["usd"] == pytest.approx(0.5)
    assert per["low_usd"] <= per["usd"] <= per["high_usd"]
    assert per_session(1.0, SessionUnion().count()) is None
    assert count.view()["relative_standard_error"] == RELATIVE_ERROR == 0.0162
