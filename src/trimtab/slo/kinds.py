"""What each SLI kind reads of the rollups, in one table (`KINDS`): a kind is either
*summed* — its counts are sums of rollup columns per status code (availability, error
rates, guardrails fired, negative feedback, refusals), classified by a pure function of
the status and the sums — or
*sketched* — its counts are a sketch column's values within a threshold (latency, cost
per request against a ceiling), read bin by bin (windows.Thresholds).

A kind read from another table than the request rollups (eval scores, sessions' costs)
is an `Own`: its windows and per-minute series are its own functions.

Everything that reads an SLI goes through this table: the windows of the status and the
evaluator (`read_together`, the SLIs of one selector that `share` a read: the summed
kinds alone in one query the database sums, with sketched ones all in one pass over the
rows), the per-minute series of the report and the console's burn-down (`minute_series`,
`series`), and the status' notes. A summed kind whose column is NULL on rows written
before it existed (`known`: refusals, migration 0017) reads only the rows that have it,
so those minutes are "no data", not good; it is summed in a query of its own
(windows.sums_windows with `known`; without it, and in sketch_windows, NULL adds as 0). A new
kind is one entry here (`Summed`, `Sketched` or `Own`) and its spec class in spec.py
(with its `Sli` fields and `to_json`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Subquery, func, select

from trimtab.slo.burn import Counts
from trimtab.slo.score_reads import score_series, score_windows, suite_scope
from trimtab.slo.session_cost_reads import session_cost_series, session_cost_windows
from trimtab.slo.sli import (
    COST_CAVEAT,
    LATENCY_CAVEAT,
    REFUSAL_CAVEAT,
    SCORE_CAVEAT,
    SESSION_COST_CAVEAT,
    answered_within,
    cost_counts,
    feedback_counts,
    guardrail_counts,
    refusal_counts,
    status_counts,
)
from trimtab.slo.spec import Selector, Sli, SliKind
from trimtab.slo.windows import (
    SketchCounts,
    Sums,
    Thresholds,
    minute_rows,
    sketch_windows,
    sums_windows,
)
from trimtab.store.engine import as_utc


@dataclass(frozen=True, slots=True)
class Summed:
    """A kind counted from sums of `columns` per status code: `counts(sli, status, sums)`;
    with `known` (one of `columns`), of the rows where that column is not NULL only."""

    columns: tuple[str, ...]
    counts: Callable[[Sli, int, Sums], Counts]
    notes: tuple[str, ...] = ()
    known: str | None = None


@dataclass(frozen=True, slots=True)
class Sketched:
    """A kind counted from a sketch column: the values within `threshold(sli)` of each
    row's sketch in `column(sli)`, classified by `counts(status, values, within)`."""

    column: Callable[[Sli], str]
    threshold: Callable[[Sli], float]
    counts: SketchCounts
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Own:
    """A kind read from a table of its own, not the request rollups (an eval score's,
    a session's cost): `windows(conn, selector, sli, end, spans)` its counts over each
    window of `spans` minutes up to `end` (included), `series(conn, selector, sli, start,
    end)` per minute from `start` to `end` (both included). SLOs with equal SLIs share a
    read."""

    windows: Callable[[Connection, Selector, Sli, datetime, Sequence[int]], dict[int, Counts]]
    series: Callable[[Connection, Selector, Sli, datetime, datetime], dict[datetime, Counts]]
    notes: tuple[str, ...] = ()
    by_version: bool = True  # whether its table keeps the route version (a candidate's burn)


Kind = Summed | Sketched | Own
Table = Mapping[SliKind, Kind]


def _latency_column(sli: Sli) -> str:
    return "latency_sketch" if sli.of == "total" else "ttft_sketch"


def _threshold_ms(sli: Sli) -> float:
    assert sli.threshold_ms is not None  # spec.LatencySpec requires it
    return sli.threshold_ms


def _ceiling_usd(sli: Sli) -> float:
    assert sli.ceiling_usd is not None  # spec.CostSpec and SessionCostSpec require it
    return sli.ceiling_usd


def _scorer(sli: Sli) -> tuple[str, str]:
    assert sli.suite is not None and sli.scorer is not None  # spec.EvalScoreSpec's
    return sli.suite, sli.scorer


def _score_windows(
    conn: Connection, selector: Selector, sli: Sli, end: datetime, spans: Sequence[int]
) -> dict[int, Counts]:
    suite, scorer = _scorer(sli)
    scope = suite_scope(conn, suite, sli.suite_scope, selector.tenant)
    if scope is None:  # the tenant's suite of an SLO without a tenant: none
        return {w: Counts(0, 0) for w in spans}
    return score_windows(
        conn, selector, suite, scorer, sli.score_threshold, end, spans, scope=scope
    )


def _score_series(
    conn: Connection, selector: Selector, sli: Sli, start: datetime, end: datetime
) -> dict[datetime, Counts]:
    suite, scorer = _scorer(sli)
    scope = suite_scope(conn, suite, sli.suite_scope, selector.tenant)
    if scope is None:
        return {}
    return score_series(conn, selector, suite, scorer, sli.score_threshold, start, end, scope=scope)


def _session_windows(
    conn: Connection, selector: Selector, sli: Sli, end: datetime, spans: Sequence[int]
) -> dict[int, Counts]:
    return session_cost_windows(conn, selector, _ceiling_usd(sli), end, spans)


def _session_series(
    conn: Connection, selector: Selector, sli: Sli, start: datetime, end: datetime
) -> dict[datetime, Counts]:
    return session_cost_series(conn, selector, _ceiling_usd(sli), start, end)


KINDS: dict[SliKind, Kind] = {
    "availability": Summed(("count",), lambda sli, status, s: status_counts(sli, status, s[0])),
    "error_rate": Summed(("count",), lambda sli, status, s: status_counts(sli, status, s[0])),
    "guardrail": Summed(
        ("count", "guardrail_fired"), lambda _sli, status, s: guardrail_counts(status, *s)
    ),
    "negative_feedback": Summed(
        ("count", "negative_feedback"), lambda _sli, status, s: feedback_counts(status, *s)
    ),
    "refusal": Summed(
        ("count", "refused"),
        lambda _sli, status, s: refusal_counts(status, *s),
        (REFUSAL_CAVEAT,),
        known="refused",
    ),
    "latency": Sketched(_latency_column, _threshold_ms, answered_within, (LATENCY_CAVEAT,)),
    "cost": Sketched(lambda _sli: "cost_sketch", _ceiling_usd, cost_counts, (COST_CAVEAT,)),
    # a session spans route versions: its table keeps none, so no candidate burn
    "session_cost": Own(_session_windows, _session_series, (SESSION_COST_CAVEAT,), False),
    "eval_score": Own(_score_windows, _score_series, (SCORE_CAVEAT,)),
}


def kind_of(sli: Sli, table: Table = KINDS) -> Kind:
    return table[sli.kind]


def share(sli: Sli, table: Table = KINDS) -> Hashable:
    """SLIs of one selector with the same value here are read together: every kind of the
    request rollups in one read (read_together), an `Own` kind's equal SLIs."""
    kind = kind_of(sli, table)
    if isinstance(kind, Own):
        return ("own", sli)
    return ("rollups",)


def by_version(sli: Sli) -> bool:
    """Whether the SLI can be narrowed to a route version (the candidate's burn)."""
    kind = kind_of(sli)
    return not isinstance(kind, Own) or kind.by_version


def reads_rollups(sli: Sli) -> bool:
    """Whether the SLI is counted from the request rollups (windows.rows can read it)."""
    return not isinstance(kind_of(sli), Own)


def columns(sli: Sli) -> tuple[str, ...]:
    """The rollup columns the SLI reads (both rollup tables have them); none for an
    `Own` kind."""
    kind = kind_of(sli)
    if isinstance(kind, Own):
        return ()
    return kind.columns if isinstance(kind, Summed) else (kind.column(sli),)


def notes(sli: Sli) -> list[str]:
    return list(kind_of(sli).notes)


def _summed(kind: Kind) -> Summed:
    assert isinstance(kind, Summed)
    return kind


def _sketched(kind: Kind) -> Sketched:
    assert isinstance(kind, Sketched)
    return kind


def _own(kind: Kind) -> Own:
    assert isinstance(kind, Own)
    return kind


def read_together(
    conn: Connection,
    selector: Selector,
    slis: Sequence[Sli],
    end: datetime,
    spans: Sequence[int],
    table: Table = KINDS,
) -> list[dict[int, Counts]]:
    """Each SLI's counts over each window of `spans` minutes up to `end` (included), from
    one read of the selector's rows (the SLIs `share` one): summed kinds alone summed by
    the database; with sketched ones, one pass over the rows gives the sketches' counts
    (each row's sketches decoded once) and the summed columns per status."""
    if isinstance(kind_of(slis[0], table), Own):
        return [_own(kind_of(sli, table)).windows(conn, selector, sli, end, spans) for sli in slis]
    summed: list[int] = []
    by_known: dict[str, list[int]] = {}  # kinds with a `known` column: read apart
    by_column: dict[str, list[int]] = {}
    for i, sli in enumerate(slis):
        kind = kind_of(sli, table)
        if isinstance(kind, Sketched):
            by_column.setdefault(kind.column(sli), []).append(i)
        elif isinstance(kind, Summed) and kind.known is not None:
            by_known.setdefault(kind.known, []).append(i)
        elif isinstance(kind, Summed):
            summed.append(i)
    wanted = _wanted(slis, summed, table)
    found: dict[int, dict[int, Counts]] = {}
    if by_column:
        reads = []
        for column, members in by_column.items():
            sketched = _sketched(kind_of(slis[members[0]], table))
            reads.append((column, [sketched.threshold(slis[i]) for i in members], sketched.counts))
        got, by_status = sketch_windows(conn, selector, reads, end, spans, wanted)
        for members, per_threshold in zip(by_column.values(), got, strict=True):
            found.update(zip(members, per_threshold, strict=True))
    elif summed:
        by_status = sums_windows(conn, selector, end, spans, wanted)
    for i in summed:
        found[i] = _classified(slis[i], by_status, wanted, spans, table)
    for known, members in by_known.items():
        columns_k = _wanted(slis, members, table)
        sums_k = sums_windows(conn, selector, end, spans, columns_k, known)
        for i in members:
            found[i] = _classified(slis[i], sums_k, columns_k, spans, table)
    return [found[i] for i in range(len(slis))]


def _wanted(slis: Sequence[Sli], members: Sequence[int], table: Table) -> tuple[str, ...]:
    """The columns the summed kinds of `members` read, each once."""
    return tuple(
        dict.fromkeys(c for i in members for c in _summed(kind_of(slis[i], table)).columns)
    )


def _classified(
    sli: Sli,
    by_status: Mapping[int, Mapping[int, Sums]],
    wanted: tuple[str, ...],
    spans: Sequence[int],
    table: Table,
) -> dict[int, Counts]:
    """A summed SLI's counts over each window, from the sums of `wanted` per status."""
    kind = _summed(kind_of(sli, table))
    at = [wanted.index(c) for c in kind.columns]
    counts = {}
    for w in spans:
        total = Counts(0, 0)
        for status, sums in by_status[w].items():
            total = total + kind.counts(sli, status, tuple(sums[j] for j in at))
        counts[w] = total
    return counts


def minute_series(
    conn: Connection,
    selector: Selector,
    sli: Sli,
    start: datetime,
    end: datetime,
    table: Table = KINDS,
) -> dict[datetime, Counts]:
    """The SLI's counts per minute from `start` to `end` (both included), minutes without
    valid requests left out."""
    kind = kind_of(sli, table)
    if isinstance(kind, Own):
        return kind.series(conn, selector, sli, start, end)
    return dict(series(conn, minute_rows(selector, start, end, columns(sli)), sli, table))


def series(
    conn: Connection, u: Subquery, sli: Sli, table: Table = KINDS
) -> list[tuple[datetime, Counts]]:
    """The SLI's counts of each start time of `u`, the (at, status_code, *columns(sli))
    rows of windows.rows or windows.minute_rows; times without valid requests left out.
    Not for an `Own` kind (minute_series reads those)."""
    kind = kind_of(sli, table)
    assert not isinstance(kind, Own), "an Own kind reads its own series"
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
        if kind.known is not None:  # a row from before its column: in neither count
            query = query.where(u.c[kind.known].is_not(None))
        for at, status, *got in conn.execute(query):
            _add(out, at, kind.counts(sli, status, tuple(int(v or 0) for v in got)))
    return sorted(out.items(), key=lambda p: p[0])


def _add(out: dict[datetime, Counts], at: datetime, counts: Counts) -> None:
    if counts.valid:
        key = as_utc(at)
        out[key] = out[key] + counts if key in out else counts
