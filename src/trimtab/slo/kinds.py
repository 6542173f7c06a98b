"""What each SLI kind reads of the rollups, in one table (`KINDS`): a kind is either
*summed* — its counts are sums of rollup columns per status code (availability, error
rates, guardrails fired, negative feedback), classified by a pure function of the status
and the sums — or
*sketched* — its counts are a sketch column's values within a threshold (latency, cost
per request against a ceiling), read bin by bin (windows.Thresholds).

Everything that reads an SLI goes through this table: the windows of the status and the
evaluator (`read_together`, the SLIs of one selector that `share` a read: every summed
kind of a selector in one query, the sketched ones per sketch column), the per-minute
series of the report and the console's burn-down (`series`), and the status' notes.
A new kind is one entry: its spec class in spec.py and its `Summed` or `Sketched` here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Subquery, func, select

from trimtab.slo.burn import Counts
from trimtab.slo.sli import (
    COST_CAVEAT,
    LATENCY_CAVEAT,
    answered_within,
    cost_counts,
    feedback_counts,
    guardrail_counts,
    status_counts,
)
from trimtab.slo.spec import Selector, Sli, SliKind
from trimtab.slo.windows import SketchCounts, Sums, Thresholds, sketch_windows, sums_windows
from trimtab.store.engine import as_utc


@dataclass(frozen=True, slots=True)
class Summed:
    """A kind counted from sums of `columns` per status code: `counts(sli, status, sums)`."""

    columns: tuple[str, ...]
    counts: Callable[[Sli, int, Sums], Counts]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sketched:
    """A kind counted from a sketch column: the values within `threshold(sli)` of each
    row's sketch in `column(sli)`, classified by `counts(status, values, within)`."""

    column: Callable[[Sli], str]
    threshold: Callable[[Sli], float]
    counts: SketchCounts
    notes: tuple[str, ...] = ()


Kind = Summed | Sketched


def _latency_column(sli: Sli) -> str:
    return "latency_sketch" if sli.of == "total" else "ttft_sketch"


def _threshold_ms(sli: Sli) -> float:
    assert sli.threshold_ms is not None  # spec.LatencySpec requires it
    return sli.threshold_ms


def _ceiling_usd(sli: Sli) -> float:
    assert sli.ceiling_usd is not None  # spec.CostSpec requires it
    return sli.ceiling_usd


KINDS: dict[SliKind, Kind] = {
    "availability": Summed(("count",), lambda sli, status, s: status_counts(sli, status, s[0])),
    "error_rate": Summed(("count",), lambda sli, status, s: status_counts(sli, status, s[0])),
    "guardrail": Summed(
        ("count", "guardrail_fired"), lambda _sli, status, s: guardrail_counts(status, *s)
    ),
    "negative_feedback": Summed(
        ("count", "negative_feedback"), lambda _sli, status, s: feedback_counts(status, *s)
    ),
    "latency": Sketched(_latency_column, _threshold_ms, answered_within, (LATENCY_CAVEAT,)),
    "cost": Sketched(lambda _sli: "cost_sketch", _ceiling_usd, cost_counts, (COST_CAVEAT,)),
}


def kind_of(sli: Sli) -> Kind:
    return KINDS[sli.kind]


def share(sli: Sli) -> Hashable:
    """SLIs of one selector with the same value here are read together: every summed
    kind in one query, the sketched ones per sketch column."""
    kind = kind_of(sli)
    return ("summed",) if isinstance(kind, Summed) else ("sketched", kind.column(sli))


def columns(sli: Sli) -> tuple[str, ...]:
    """The rollup columns the SLI reads (both rollup tables have them)."""
    kind = kind_of(sli)
    return kind.columns if isinstance(kind, Summed) else (kind.column(sli),)


def notes(sli: Sli) -> list[str]:
    return list(kind_of(sli).notes)


def _summed(kind: Kind) -> Summed:
    assert isinstance(kind, Summed)
    return kind


def read_together(
    conn: Connection, selector: Selector, slis: Sequence[Sli], end: datetime, spans: Sequence[int]
) -> list[dict[int, Counts]]:
    """Each SLI's counts over each window of `spans` minutes up to `end` (included), from
    one read of the selector's rows (the SLIs `share` one)."""
    kind = kind_of(slis[0])
    if isinstance(kind, Sketched):
        thresholds = [kind.threshold(sli) for sli in slis]
        return sketch_windows(
            conn, selector, kind.column(slis[0]), thresholds, kind.counts, end, spans
        )
    wanted = tuple(dict.fromkeys(c for sli in slis for c in columns(sli)))
    by_status = sums_windows(conn, selector, end, spans, wanted)
    out = []
    for sli in slis:
        summed = _summed(kind_of(sli))
        at = [wanted.index(c) for c in summed.columns]
        counts = {}
        for w in spans:
            total = Counts(0, 0)
            for status, sums in by_status[w].items():
                total = total + summed.counts(sli, status, tuple(sums[i] for i in at))
            counts[w] = total
        out.append(counts)
    return out


def series(conn: Connection, u: Subquery, sli: Sli) -> list[tuple[datetime, Counts]]:
    """The SLI's counts of each start time of `u`, the (at, status_code, *columns(sli))
    rows of windows.rows or windows.minute_rows; times without valid requests left out."""
    kind = kind_of(sli)
    out: dict[datetime, Counts] = {}
    if isinstance(kind, Sketched):
        column = kind.column(sli)
        reader = Thresholds([kind.threshold(sli)])
        query = select(u.c.at, u.c.status_code, u.c[column]).where(u.c[column].is_not(None))
        for at, status, raw in conn.execute(query):
            count, (below,) = reader.counts(raw)
            _add(out, at, kind.counts(status, count, below))
    else:
        sums = [func.sum(u.c[c]) for c in kind.columns]
        query = select(u.c.at, u.c.status_code, *sums).group_by(u.c.at, u.c.status_code)
        for at, status, *got in conn.execute(query):
            _add(out, at, kind.counts(sli, status, tuple(int(v or 0) for v in got)))
    return sorted(out.items(), key=lambda p: p[0])


def _add(out: dict[datetime, Counts], at: datetime, counts: Counts) -> None:
    if counts.valid:
        key = as_utc(at)
        out[key] = out[key] + counts if key in out else counts
