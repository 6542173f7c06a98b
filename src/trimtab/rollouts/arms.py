"""What the canary analysis reads: each arm's requests, feedback and online scores over one
window."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Engine, Text, case, cast, func, literal_column, or_, select

from trimtab.canary.arm_stats import ArmStats, LatencySamples, UnitCounts, UnitSums
from trimtab.registry.scope import RouteKey
from trimtab.rollouts.row import RolloutRow
from trimtab.store.tables import feedback, online_scores, requests, routes
from trimtab.telemetry.production import production
from trimtab.types import REFUSAL_FINISH_REASONS

MAX_LATENCY_ROWS = 200_000  # bound on the latencies one window reads per arm
# bound on the users (units of assignment) one window reads per arm: the most active first;
# the requests of the others count as one unit each (docs/canary.md)
MAX_UNIT_ROWS = 50_000
# the period before a rollout whose per-user rates adjust its tests (docs/canary.md)
PRE_PERIOD_S = 86_400.0
# latencies below this (ms) are taken at it in the log-latency sums (the log of 0 is not)
MIN_LOG_MS = 0.001


@dataclass(frozen=True, slots=True)
class Quality:
    """One arm's online scores over a window: `answers` scored, `scores` (an answer has
    one per scorer), their sum (each in [0, 1]) and how many passed; `answer_sum` and
    `answer_sq_sum` are the sum and the sum of squares of each answer's own score (the mean
    of its scorers' values): what `quality_score` tests, an answer being one observation
    (its scorers judge the same text, so their scores are not independent)."""

    answers: int = 0
    scores: int = 0
    total: float = 0.0
    passes: int = 0
    answer_sum: float = 0.0
    answer_sq_sum: float = 0.0
    # the same answers per unit of assignment (their requests' user, else session), the
    # most active first: keys, and each unit's answers, sum and sum of squares of scores
    unit_keys: tuple[str, ...] = ()
    unit_sums: UnitSums | None = None

    @property
    def mean(self) -> float | None:
        return self.total / self.scores if self.scores else None


class ArmReader:
    """Stable's and the candidate's statistics, from the requests and feedback tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def between(
        self, ro: RolloutRow, start: datetime, end: datetime | None
    ) -> tuple[ArmStats, ArmStats]:
        """Stable and candidate over one window, ``start <= started_at < end``: the same
        time, at one traffic split; with their online scores (:meth:`quality`)."""
        return (
            self.version(ro.key, ro.stable_version, start, end),
            self.version(ro.key, ro.candidate_version, start, end),
        )

    def quality(
        self, ro: RolloutRow, start: datetime, end: datetime | None
    ) -> tuple[Quality, Quality]:
        """Stable's and the candidate's online scores (evals/online.py) over one window:
        the data of the canary metric `quality_score`."""
        return (
            self._quality(ro.key, ro.stable_version, start, end),
            self._quality(ro.key, ro.candidate_version, start, end),
        )

    def _quality(
        self, route: RouteKey, number: int, start: datetime, end: datetime | None
    ) -> Quality:
        s = online_scores.c
        within = [
            s.route == route.name,
            self._callers(route, s.tenant),
            s.version == f"v{number}",
            s.request_at >= start,
            s.value.is_not(None),
        ]
        if end is not None:
            within.append(s.request_at < end)
        # one score per answer and scorer name: suites that share a scorer's name score
        # the same thing (online_scores keeps each suite's row), so their mean counts once
        # and it passed only if every suite passed it
        per_scorer = (
            select(
                s.request_id.label("request_id"), func.avg(s.value).label("value"),
                func.min(case((s.passed.is_(True), 1), else_=0)).label("passed"),
            )
            .where(*within)
            .group_by(s.request_id, s.scorer)
            .subquery()
        )  # fmt: skip
        p = per_scorer.c
        per_answer = (
            select(
                p.request_id.label("request_id"),
                func.count().label("n"), func.sum(p.value).label("total"),
                func.sum(p.passed).label("passes"), func.avg(p.value).label("score"),
            )
            .group_by(p.request_id)
            .subquery()
        )  # fmt: skip
        a = per_answer.c
        query = select(
            func.count(), func.coalesce(func.sum(a.n), 0), func.coalesce(func.sum(a.total), 0.0),
            func.coalesce(func.sum(a.passes), 0), func.coalesce(func.sum(a.score), 0.0),
            func.coalesce(func.sum(a.score * a.score), 0.0),
        )  # fmt: skip
        # the scored answers per unit of assignment: the scores carry no user, their
        # requests do (an answer whose request has neither user nor session is the rest)
        unit = _unit_key()
        per_unit = (
            select(unit, func.count(), func.sum(a.score), func.sum(a.score * a.score))
            .select_from(per_answer.join(requests, requests.c.id == a.request_id))
            .where(unit.is_not(None))
            .group_by(unit)
            .order_by(func.count().desc(), unit)
            .limit(MAX_UNIT_ROWS)
        )
        with self.engine.connect() as conn:
            answers, n, total, passes, score_sum, score_sq = conn.execute(query).one()
            units = conn.execute(per_unit).all()
        sums = np.array([[float(v) for v in r[1:4]] for r in units]).reshape(-1, 3)
        seen = sums.sum(axis=0)
        rest = np.maximum([float(answers) - seen[0], float(score_sum) - seen[1],
                           float(score_sq) - seen[2]], 0.0)  # fmt: skip
        if rest[0] == 0:  # every answer broken down: what is left is rounding
            rest[:] = 0.0
        by_unit = UnitSums(sums[:, 0], sums[:, 1], sums[:, 2], *(float(v) for v in rest))
        return Quality(
            int(answers), int(n), float(total), int(passes), float(score_sum), float(score_sq),
            tuple(str(r[0]) for r in units), by_unit,
        )  # fmt: skip

    def version(
        self, route: RouteKey, number: int, start: datetime, end: datetime | None
    ) -> ArmStats:
        """One version's statistics over ``start <= started_at < end``, its online scores
        with them (a rollout's forecast reads the stable version's recent traffic with it)."""
        arm = self._arm(route, number, start, end)
        return with_quality(arm, self._quality(route, number, start, end))

    def before(self, ro: RolloutRow, period_s: float = PRE_PERIOD_S) -> UnitCounts:
        """The route's requests per unit of assignment in the ``period_s`` before the
        rollout started, whatever version served them: each user's own rates before the
        rollout, the covariate of the error, refusal and guardrail tests, and each user's
        sums and sums of squares of cost and of log latency, those of the cost and latency
        tests (canary.clustering.unit_dispersion)."""
        c = requests.c
        start = ro.started_at - timedelta(seconds=period_s)
        within = [
            c.route == ro.key.name,
            self._callers(ro.key, c.tenant),
            c.started_at >= start,
            c.started_at < ro.started_at,
            production(c.feature),
        ]
        with self.engine.connect() as conn:
            units = conn.execute(self._per_unit(within)).all()
        return _units(units)

    def _sums(self) -> list[Any]:
        """What both the arm's totals and its per-unit rows sum, in this order: requests,
        errors, refusals, guardrail firings, the sum and sum of squares of cost, and of
        the log of latency (ms)."""
        c = requests.c
        reasons = cast(c.finish_reasons, Text)
        refused = or_(*(reasons.like(f'%"{r}"%') for r in REFUSAL_FINISH_REASONS))
        fired = guardrail_fired(self.engine.dialect.name, c.attributes)
        cost = func.coalesce(c.cost_usd, 0.0)
        log_ms = func.ln(case((c.duration_ms > MIN_LOG_MS, c.duration_ms), else_=MIN_LOG_MS))

        def events(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        return [
            func.count(), events(c.status_code >= 500), events(refused), events(fired),
            func.coalesce(func.sum(cost), 0.0), func.coalesce(func.sum(cost * cost), 0.0),
            func.coalesce(func.sum(log_ms), 0.0), func.coalesce(func.sum(log_ms * log_ms), 0.0),
        ]  # fmt: skip

    def _per_unit(self, within: list[Any]) -> Any:
        """:meth:`_sums` per unit of assignment, as canary.assignment.sticky_key picks it:
        the user, else the session (a request with neither is its own unit); the most
        active first, at most MAX_UNIT_ROWS."""
        unit = _unit_key()
        return (
            select(unit, *self._sums())
            .where(*within, unit.is_not(None))
            .group_by(unit)
            .order_by(func.count().desc(), unit)
            .limit(MAX_UNIT_ROWS)
        )

    @staticmethod
    def _callers(route: RouteKey, tenant: Any) -> Any:
        """The requests and feedback of a route: records name the route, not its scope, so
        a tenant's own route is its tenant's records of that name, and a shared route the
        records of tenants without an own route of that name (which would shadow it)."""
        if route.tenant is not None:
            return tenant == route.tenant
        r = routes.c
        return tenant.not_in(select(r.scope).where(r.name == route.name, r.scope != route.scope))

    def _arm(self, route: RouteKey, number: int, start: datetime, end: datetime | None) -> ArmStats:
        c = requests.c
        label = f"v{number}"
        within = [
            c.route == route.name,
            self._callers(route, c.tenant),
            c.version == label,
            c.started_at >= start,
            production(c.feature),  # an eval run of a version moves no canary verdict
        ]
        if end is not None:
            within.append(c.started_at < end)
        totals = select(*self._sums()).where(*within)
        latencies = select(c.duration_ms).where(*within).limit(MAX_LATENCY_ROWS)
        per_unit = self._per_unit(within)
        f = feedback.c
        marks = [
            f.route == route.name,
            self._callers(route, f.tenant),
            f.version == label,
            f.at >= start,
        ]
        if end is not None:
            marks.append(f.at < end)
        votes = select(
            func.count(), func.coalesce(func.sum(case((f.negative, 1), else_=0)), 0)
        ).where(*marks)
        with self.engine.connect() as conn:
            sums = tuple(conn.execute(totals).one())
            durations = conn.execute(latencies).scalars().all()
            units = conn.execute(per_unit).all()
            voted, negative = conn.execute(votes).one()
        n, errors, refusals, tripped, cost_sum, cost_sq_sum = sums[:6]
        feedback_n = min(int(voted), int(n))
        return ArmStats(
            n=int(n),
            errors=int(errors),
            refusals=int(refusals),
            feedback_n=feedback_n,
            negative_feedback=min(int(negative), feedback_n),
            cost_sum=float(cost_sum),
            cost_sq_sum=float(cost_sq_sum),
            latency=LatencySamples.of(durations) if durations else None,
            units=_units(units, sums),
            guardrail_fired=int(tripped),
        )


def _unit_key() -> ColumnElement[str]:
    """A request's unit of assignment, as canary.assignment.sticky_key picks it: the user,
    else the session (NULL for a request with neither)."""
    c = requests.c
    # (the prefixes inlined: PostgreSQL must see the same expression in GROUP BY)
    unit: ColumnElement[str] = func.coalesce(
        literal_column("'user:'") + c.user_id, literal_column("'session:'") + c.session_id
    )
    return unit


def with_quality(arm: ArmStats, q: Quality) -> ArmStats:
    """``arm`` with ``q`` as its online scores (the counters of ``quality_score``); with
    the arm's requests per unit, also its scored answers per unit (``units.quality``, in
    the order of ``units.keys``: a unit not among them, beyond the read's bound, counts
    its answers as the rest, one unit each)."""
    out = replace(
        arm, quality_n=q.answers, quality_sum=q.answer_sum, quality_sq_sum=q.answer_sq_sum
    )
    if arm.units is None or q.unit_sums is None:
        return out
    keys = arm.units.keys
    at = {key: i for i, key in enumerate(keys)}
    n, total, squares = np.zeros(len(keys)), np.zeros(len(keys)), np.zeros(len(keys))
    src = q.unit_sums
    for j, key in enumerate(q.unit_keys):
        i = at.get(key)
        if i is not None:
            n[i], total[i], squares[i] = src.n[j], src.total[j], src.squares[j]
    rest_n = max(float(q.answers) - float(n.sum()), 0.0)
    rest_total = max(q.answer_sum - float(total.sum()), 0.0)
    rest_squares = max(q.answer_sq_sum - float(squares.sum()), 0.0)
    if rest_n == 0:
        rest_total = rest_squares = 0.0
    sums = UnitSums(n, total, squares, rest_n, rest_total, rest_squares)
    return replace(out, units=replace(arm.units, quality=sums))


def guardrail_fired(dialect: str, attributes: Any) -> ColumnElement[bool]:
    """A request on which a guardrail fired: its ``attributes.guardrails.fired`` list
    (gateway/guarding.py) is not empty. A JSON path per dialect, not a LIKE on the text
    (every check's own entry has a ``fired`` flag too); NULL, and so not counted, for a
    record without guardrails."""
    if dialect == "postgresql":
        path = attributes.op("#>")(literal_column("'{guardrails,fired}'"))
        return func.json_array_length(path) > 0
    return func.json_array_length(attributes, literal_column("'$.guardrails.fired'")) > 0


def _units(rows: Any, totals: tuple[Any, ...] | None = None) -> UnitCounts:
    """The per-unit rows of :meth:`ArmReader._per_unit` as :class:`UnitCounts`; what
    ``totals`` (the arm's :meth:`ArmReader._sums`) has beyond them is the rest, each
    request its own unit (none without ``totals``)."""
    sums = np.array([list(r[1:9]) for r in rows], dtype=np.float64).reshape(-1, 8)
    seen = sums.sum(axis=0)
    rest = (
        np.zeros(8)
        if totals is None
        else np.array([float(t) for t in totals], dtype=np.float64) - seen
    )
    rest[[0, 1, 2, 3, 4, 5, 7]] = np.maximum(rest[[0, 1, 2, 3, 4, 5, 7]], 0.0)
    if rest[0] == 0:  # every request broken down: what is left of the sums is rounding
        rest[:] = 0.0

    def of(col: int, rest_n: float) -> UnitSums:
        return UnitSums(
            sums[:, 0], sums[:, col], sums[:, col + 1], rest_n, float(rest[col]),
            float(rest[col + 1]),
        )  # fmt: skip

    return UnitCounts(
        keys=tuple(str(r[0]) for r in rows),
        n=sums[:, 0],
        errors=sums[:, 1],
        refusals=sums[:, 2],
        guardrail_fired=sums[:, 3],
        rest_n=float(rest[0]),
        rest_errors=float(rest[1]),
        rest_refusals=float(rest[2]),
        rest_guardrail_fired=float(rest[3]),
        cost=of(4, float(rest[0])),
        log_latency=of(6, float(rest[0])),
    )
