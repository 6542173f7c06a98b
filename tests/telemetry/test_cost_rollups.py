"""The rollups' cost sketches (the cost SLI's, migration 0015_rollup_sli_columns): the
writer puts each request's cost in its row's sketch (an unknown or zero cost in the zero
bin) and merges later batches into it, a row from before the migration starts its sketch
with the next batch, and the compaction merges the minutes' sketches into the hour's and
the hours' into the day's. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update

from tests.slo.support import NOW, request
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.sketch import from_bytes
from trimtab.telemetry.store import TelemetryStore

MINUTE = NOW.replace(second=0, microsecond=0)
HOUR = MINUTE.replace(minute=0)


def _minute_sketches(engine: Engine) -> dict[object, bytes | None]:
    c = rollups.c
    with engine.connect() as conn:
        return {as_utc(m): raw for m, raw in conn.execute(select(c.minute, c.cost_sketch))}


def test_the_writer_sketches_each_requests_cost(engine: Engine) -> None:
    t = NOW.timestamp() - 20
    store = TelemetryStore(engine)
    store.write([request(1, t, cost_usd=0.01), request(2, t, cost_usd=None)])
    store.write([request(3, t, cost_usd=0.0), request(4, t, cost_usd=0.03)])
    (raw,) = _minute_sketches(engine).values()
    assert raw is not None
    sketch = from_bytes(raw)
    assert (sketch.count, sketch._zero_count) == (4, 2)  # the unknown and the free one
    assert sketch.get_quantile_value(1.0) == pytest.approx(0.03, rel=0.01)
    assert sketch.get_quantile_value(0.74) == pytest.approx(0.01, rel=0.01)


def test_a_row_from_before_the_migration_starts_with_the_next_batch(engine: Engine) -> None:
    t = NOW.timestamp() - 20
    store = TelemetryStore(engine)
    store.write([request(1, t, cost_usd=0.01), request(2, t, cost_usd=0.01)])
    with engine.begin() as conn:  # as 0015 leaves a row written before it
        conn.execute(update(rollups).values(cost_sketch=None))
    store.write([request(3, t, cost_usd=0.02)])
    (raw,) = _minute_sketches(engine).values()
    assert raw is not None and from_bytes(raw).count == 1
    with engine.connect() as conn:
        assert conn.scalar(select(rollups.c.count)) == 3


def test_the_compaction_merges_the_cost_sketches(engine: Engine) -> None:
    store = TelemetryStore(engine)
    base = HOUR - timedelta(days=1)  # a closed day
    store.write([request(n, (base + timedelta(minutes=n)).timestamp(), cost_usd=0.001 * n)
                 for n in range(1, 11)])  # fmt: skip
    store.write([request(20, (base + timedelta(hours=2)).timestamp(), cost_usd=0.5)])
    with engine.begin() as conn:  # one minute from before migration 0015
        c = rollups.c
        conn.execute(update(rollups).where(c.minute == base + timedelta(minutes=1))
                     .values(cost_sketch=None))  # fmt: skip
    while compact(engine, NOW):
        pass
    h = rollups_hour.c
    with engine.connect() as conn:
        got = {
            (int(n), as_utc(at)): (count, raw)
            for n, at, count, raw in conn.execute(select(h.hours, h.hour, h.count, h.cost_sketch))
        }
    count, raw = got[(1, base)]
    assert count == 10 and raw is not None and from_bytes(raw).count == 9
    assert from_bytes(got[(1, base + timedelta(hours=2))][1] or b"").count == 1
    day = got[(24, base.replace(hour=0))]
    assert day[0] == 11 and day[1] is not None
    merged = from_bytes(day[1])
    assert merged.count == 10
    assert merged.get_quantile_value(1.0) == pytest.approx(0.5, rel=0.01)
