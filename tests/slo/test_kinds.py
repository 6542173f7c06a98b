"""slo/kinds.py's dispatch: every kind of spec.py has one entry, and an `Own` kind (a
kind read from another table, as eval scores and sessions' costs are) is read through
its own functions by `read_together` and `minute_series`, shares a read only with equal
SLIs, and gives what its functions give. Here the `Own` entry wraps the summed reads of
the negative-feedback kind, so both paths must agree. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import get_args

from sqlalchemy import Connection, Engine

from tests.slo.support import NOW, request
from trimtab.audit.log import Actor
from trimtab.rollouts.feedback import FeedbackStore
from trimtab.slo.burn import Counts
from trimtab.slo.kinds import KINDS, Own, minute_series, read_together, share
from trimtab.slo.spec import SLI_KINDS, Selector, Sli, SliKind
from trimtab.telemetry.store import TelemetryStore

SELECTOR = Selector(route="support")
FEEDBACK = Sli("negative_feedback")
END = NOW.replace(second=0, microsecond=0)


def _windows(
    conn: Connection, selector: Selector, sli: Sli, end: datetime, spans: Sequence[int]
) -> dict[int, Counts]:
    return read_together(conn, selector, [sli], end, spans)[0]


def _series(
    conn: Connection, selector: Selector, sli: Sli, start: datetime, end: datetime
) -> dict[datetime, Counts]:
    return minute_series(conn, selector, sli, start, end)


OWN = {**KINDS, "negative_feedback": Own(_windows, _series, ("read on its own",))}


def test_every_kind_has_one_entry() -> None:
    assert set(KINDS) == set(SLI_KINDS) == set(get_args(SliKind))


def test_an_own_kind_is_read_through_its_functions(engine: Engine) -> None:
    t = NOW.timestamp()
    TelemetryStore(engine).write([request(n, t - 30 * n) for n in range(1, 7)])
    store = FeedbackStore(engine)
    for n in (1, 4):
        store.add(f"req_{n:08d}", None, 0.0, None, False, Actor("key_app", "app", "acme"))
    spans = [1, 2, 60]
    with engine.connect() as conn:
        summed = read_together(conn, SELECTOR, [FEEDBACK], END, spans)
        own = read_together(conn, SELECTOR, [FEEDBACK, FEEDBACK], END, spans, OWN)
        start = END - timedelta(minutes=59)
        by_minute = minute_series(conn, SELECTOR, FEEDBACK, start, END)
        assert minute_series(conn, SELECTOR, FEEDBACK, start, END, OWN) == by_minute
    assert own == summed * 2 and summed[0][60] == Counts(4, 6)
    assert sum(by_minute.values(), Counts(0, 0)) == Counts(4, 6)
    # with its summed entry it shares the selector's one query with availability; as an
    # Own kind only with an equal SLI
    assert share(FEEDBACK) == share(Sli("availability"))
    assert share(FEEDBACK, OWN) == share(Sli("negative_feedback"), OWN)
    assert share(FEEDBACK, OWN) != share(Sli("availability"), OWN)
