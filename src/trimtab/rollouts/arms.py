"""What the canary analysis reads: each arm's requests, feedback and online scores over one
window."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Engine, Text, case, cast, func, literal_column, or_, select

from trimtab.canary.arm_stats import ArmStats, LatencySamples, UnitCounts
from trimtab.registry.scope import RouteKey
from trimtab.rollouts.row import RolloutRow
from trimtab.store.tables import feedback, online_scores, requests, routes
from trimtab.telemetry.production import production

# the finish reasons that mean the model refused (OpenAI's and Anthropic's words)
REFUSAL_FINISH_REASONS = ("content_filter", "refusal")
MAX_LATENCY_ROWS = 200_000  # bound on the latencies one window reads per arm
# bound on the users (units of assignment) one window reads per arm: the most active first;
# the requests of the others count as one unit each (docs/canary.md)
MAX_UNIT_ROWS = 50_000
# the period before a rollout whose per-user rates adjust its tests (docs/canary.md)
PRE_PERIOD_S = 86_400.0


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
        passed = func.sum(case((s.passed.is_(True), 1), else_=0))
        per_answer = (
            select(
                func.count().label("n"), func.sum(s.value).label("total"),
                passed.label("passes"), func.avg(s.value).label("score"),
            )
            .where(*within)
            .group_by(s.request_id)
            .subquery()
        )  # fmt: skip
        a = per_answer.c
        query = select(
            func.count(), func.coalesce(func.sum(a.n), 0), func.coalesce(func.sum(a.total), 0.0),
            func.coalesce(func.sum(a.passes), 0), func.coalesce(func.sum(a.score), 0.0),
            func.coalesce(func.sum(a.score * a.score), 0.0),
        )  # fmt: skip
        with self.engine.connect() as conn:
            answers, n, total, passes, score_sum, score_sq = conn.execute(query).one()
        return Quality(
            int(answers), int(n), float(total), int(passes), float(score_sum), float(score_sq)
        )

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
        rollout, the covariate of the error, refusal and guardrail tests
        (canary.clustering.unit_dispersion)."""
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
        return _units(units, 0, 0, 0, 0)

    def _per_unit(self, within: list[Any]) -> Any:
        """Requests, errors, refusals and guardrail firings per unit of assignment, as
        canary.assignment.sticky_key picks it: the user, else the session (a request with
        neither is its own unit); the most active first, at most MAX_UNIT_ROWS."""
        c = requests.c
        reasons = cast(c.finish_reasons, Text)
        refused = or_(*(reasons.like(f'%"{r}"%') for r in REFUSAL_FINISH_REASONS))
        fired = guardrail_fired(self.engine.dialect.name, c.attributes)
        # (the prefixes inlined: PostgreSQL must see the same expression in GROUP BY)
        unit: ColumnElement[str] = func.coalesce(
            literal_column("'user:'") + c.user_id, literal_column("'session:'") + c.session_id
        )
        return (
            select(
                unit,
                func.count(),
                func.coalesce(func.sum(case((c.status_code >= 500, 1), else_=0)), 0),
                func.coalesce(func.sum(case((refused, 1), else_=0)), 0),
                func.coalesce(func.sum(case((fired, 1), else_=0)), 0),
            )
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
        cost = func.coalesce(c.cost_usd, 0.0)
        reasons = cast(c.finish_reasons, Text)
        refused = or_(*(reasons.like(f'%"{r}"%') for r in REFUSAL_FINISH_REASONS))
        fired = guardrail_fired(self.engine.dialect.name, c.attributes)
        totals = select(
            func.count(),
            func.coalesce(func.sum(case((c.status_code >= 500, 1), else_=0)), 0),
            func.coalesce(func.sum(case((refused, 1), else_=0)), 0),
            func.coalesce(func.sum(cost), 0.0),
            func.coalesce(func.sum(cost * cost), 0.0),
            func.coalesce(func.sum(case((fired, 1), else_=0)), 0),
        ).where(*within)
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
            n, errors, refusals, cost_sum, cost_sq_sum, tripped = conn.execute(totals).one()
            durations = conn.execute(latencies).scalars().all()
            units = conn.execute(per_unit).all()
            voted, negative = conn.execute(votes).one()
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
            units=_units(units, int(n), int(errors), int(refusals), int(tripped)),
            guardrail_fired=int(tripped),
        )


def with_quality(arm: ArmStats, q: Quality) -> ArmStats:
    """``arm`` with ``q`` as its online scores (the counters of ``quality_score``)."""
    return replace(
        arm, quality_n=q.answers, quality_sum=q.answer_sum, quality_sq_sum=q.answer_sq_sum
    )


def guardrail_fired(dialect: str, attributes: Any) -> ColumnElement[bool]:
    """A request on which a guardrail fired: its ``attributes.guardrails.fired`` list
    (gateway/guarding.py) is not empty. A JSON path per dialect, not a LIKE on the text
    (every check's own entry has a ``fired`` flag too); NULL, and so not counted, for a
    record without guardrails."""
    if dialect == "postgresql":
        path = attributes.op("#>")(literal_column("'{guardrails,fired}'"))
        return func.json_array_length(path) > 0
    return func.json_array_length(attributes, literal_column("'$.guardrails.fired'")) > 0


def _units(rows: Any, n: int, errors: int, refusals: int, fired: int) -> UnitCounts:
    counts = np.array([list(r[1:5]) for r in rows], dtype=np.float64).reshape(-1, 4)
    seen = counts.sum(axis=0)
    return UnitCounts(
        keys=tuple(str(r[0]) for r in rows),
        n=counts[:, 0],
        errors=counts[:, 1],
        refusals=counts[:, 2],
        guardrail_fired=counts[:, 3],
        rest_n=max(n - float(seen[0]), 0.0),
        rest_errors=max(errors - float(seen[1]), 0.0),
        rest_refusals=max(refusals - float(seen[2]), 0.0),
        rest_guardrail_fired=max(fired - float(seen[3]), 0.0),
    )
