"""The rollups' refusal counts (the refusal SLI's, migration 0017_rollup_refusals): the
writer counts on each minute row the requests whose response the model refused (OpenAI's
`content_filter`, Anthropic's `refusal`; any choice of several), merges later batches into
it, leaves a row from before the migration NULL, and the compaction sums the minutes into
the hour and the hours into the day, NULL when any of them is. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select, update

from tests.slo.support import NOW, request
from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups, rollups_hour
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.store import TelemetryStore
from trimtab.types import is_refusal

MINUTE = NOW.replace(second=0, microsecond=0)
HOUR = MINUTE.replace(minute=0)


def test_which_finish_reasons_are_refusals() -> None:
    assert is_refusal(["content_filter"]) and is_refusal(["refusal"])
    assert is_refusal(["stop", "content_filter"])  # one refused choice of two
    assert not is_refusal(["stop"]) and not is_refusal(["end_turn", "max_tokens"])
    assert not is_refusal([]) and not is_refusal(None)


def _counts(engine: Engine) -> dict[tuple[object, int], tuple[int, int | None]]:
    c = rollups.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.minute, c.status_code, c.count, c.refused))
        return {(as_utc(m), int(s)): (n, r) for m, s, n, r in rows}


def test_the_writer_counts_refusals_per_minute_row(engine: Engine) -> None:
    t = NOW.timestamp() - 20
    store = TelemetryStore(engine)
    store.write(
        [
            request(1, t, finish_reasons=["stop"]),
            request(2, t, finish_reasons=["content_filter"]),
            request(3, t, finish_reasons=["refusal"], api="anthropic"),
            request(4, t),  # no finish reason recorded (an embedding, a cut stream)
            request(5, t, status_code=502),
            request(6, t - 60, finish_reasons=["stop", "content_filter"]),
        ]
    )
    store.write([request(7, t, finish_reasons=["refusal"]), request(8, t, finish_reasons=["stop"])])
    assert _counts(engine) == {
        (MINUTE, 200): (6, 3),  # 2, 3 and 7
        (MINUTE, 502): (1, 0),
        (MINUTE - timedelta(minutes=1), 200): (1, 1),
    }
    # read back into the summaries' Rollup, the count is there too
    (_, rollup), *_ = sorted(
        TelemetryStore(engine).rollups_since(MINUTE, None), key=lambda kr: kr[0][5]
    )
    assert (rollup.count, rollup.refused) == (6, 3)


def test_a_row_from_before_the_migration_stays_unknown(engine: Engine) -> None:
    t = NOW.timestamp() - 20
    store = TelemetryStore(engine)
    store.write([request(1, t, finish_reasons=["refusal"])])
    with engine.begin() as conn:  # as 0017 leaves a row written before it
        conn.execute(update(rollups).values(refused=None))
    store.write([request(2, t, finish_reasons=["refusal"])])
    # its first request was never counted: a count of 1 of 2 would be a guess
    assert _counts(engine) == {(MINUTE, 200): (2, None)}


def test_the_compaction_sums_refusals_and_keeps_unknown_spans_unknown(engine: Engine) -> None:
    store = TelemetryStore(engine)
    base = HOUR - timedelta(days=1)  # a closed day
    reasons = (["stop"], ["content_filter"], ["refusal"])
    store.write([request(n, (base + timedelta(minutes=n)).timestamp(),
                         finish_reasons=reasons[n % 3]) for n in range(1, 11)])  # fmt: skip
    store.write([request(20, (base + timedelta(hours=2)).timestamp(), finish_reasons=["refusal"])])
    store.write([request(30, (base + timedelta(hours=5)).timestamp(), finish_reasons=["stop"])])
    with engine.begin() as conn:  # one minute of hour 5 from before migration 0017
        c = rollups.c
        conn.execute(update(rollups).where(c.minute == base + timedelta(hours=5))
                     .values(refused=None))  # fmt: skip
    while compact(engine, NOW):
        pass
    h = rollups_hour.c
    with engine.connect() as conn:
        got = {
            (int(n), as_utc(at)): (count, refused)
            for n, at, count, refused in conn.execute(select(h.hours, h.hour, h.count, h.refused))
        }
    assert got == {
        (1, base): (10, 7),  # n % 3 of 1..10: 1, 2, 4, 5, 7, 8, 10 refused
        (1, base + timedelta(hours=2)): (1, 1),
        (1, base + timedelta(hours=5)): (1, None),
        (24, base.replace(hour=0)): (12, None),  # holds the unknown hour
    }
