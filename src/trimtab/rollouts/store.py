"""Rollouts, attestations and feedback in the store; every change also lands on the timeline."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Text, case, cast, func, insert, or_, select, update

from trimtab.audit.log import Actor, AuditLog
from trimtab.canary.analysis import ArmStats, LatencySamples
from trimtab.canary.gates import Attestation, missing_evidence
from trimtab.canary.plans import Plan
from trimtab.errors import GatewayError
from trimtab.registry.store import RouteKey, RouteStore
from trimtab.store.engine import as_utc
from trimtab.store.tables import (
    attestations,
    feedback,
    requests,
    rollouts,
    route_events,
    route_versions,
    routes,
)

ACTIVE = ("running", "paused")
# the finish reasons that mean the model refused (OpenAI's and Anthropic's words)
REFUSAL_FINISH_REASONS = ("content_filter", "refusal")
MAX_LATENCY_ROWS = 200_000  # bound on the latencies one window reads per arm


@dataclass(frozen=True, slots=True)
class RolloutRow:
    id: str
    route: str
    scope: str  # the route's: its tenant, "" when shared
    stable_version: int
    candidate_version: int
    plan_name: str
    plan: Plan
    stage: int
    stage_started_at: datetime
    status: str
    started_at: datetime
    started_by: str | None
    ended_at: datetime | None
    reason: str | None
    last_decision: dict[str, Any] | None
    # when each stage so far began (rollouts from before 0005: the current stage only)
    stage_starts: tuple[datetime, ...] = ()

    @classmethod
    def of(cls, row: Any) -> RolloutRow:
        return cls(
            id=row.id,
            route=row.route,
            scope=row.scope,
            stable_version=row.stable_version,
            candidate_version=row.candidate_version,
            plan_name=row.plan_name,
            plan=Plan.model_validate(row.plan),
            stage=row.stage,
            stage_started_at=as_utc(row.stage_started_at),
            status=row.status,
            started_at=as_utc(row.started_at),
            started_by=row.started_by,
            ended_at=as_utc(row.ended_at) if row.ended_at else None,
            reason=row.reason,
            last_decision=row.last_decision,
            stage_starts=tuple(as_utc(datetime.fromisoformat(t)) for t in row.stage_starts or ()),
        )

    @property
    def key(self) -> RouteKey:
        return RouteKey(self.scope, self.route)

    def windows(self) -> tuple[tuple[datetime, datetime | None], ...]:
        """The analysis windows: one per stage so far, ``(start, end)``, the current
        stage's open (``end`` None). Each has one traffic split, so the tests can weigh
        each on its own while the evidence adds up over the whole rollout."""
        starts = self.stage_starts if len(self.stage_starts) == self.stage + 1 else ()
        if not starts:
            return ((self.stage_started_at, None),)
        ends: list[datetime | None] = [*starts[1:], None]
        return tuple(zip(starts, ends, strict=True))

    @property
    def percent(self) -> float:
        return self.plan.stages[self.stage].percent

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "tenant": self.key.tenant,
            "stable_version": self.stable_version,
            "candidate_version": self.candidate_version,
            "plan": self.plan_name,
            "stages": [s.model_dump() for s in self.plan.stages],
            "metrics": {
                name: rule.model_dump(exclude_none=True) for name, rule in self.plan.metrics.items()
            },
            "stage": self.stage,
            "percent": self.percent,
            "stage_started_at": self.stage_started_at.isoformat(),
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "started_by": self.started_by,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "reason": self.reason,
            "last_decision": self.last_decision,
        }


def finite(value: Any) -> Any:
    """JSON-safe statistics: infinities and NaN become None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _conflict(message: str) -> GatewayError:
    return GatewayError(409, "conflict", message)


class RolloutStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reading -----------------------------------------------------------------------

    def current(self, route: RouteKey) -> RolloutRow | None:
        """The route's rollout that is running or paused, if any."""
        o = rollouts.c
        query = select(rollouts).where(route.where(rollouts), o.status.in_(ACTIVE))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return RolloutRow.of(row) if row else None

    def latest(self, route: RouteKey) -> RolloutRow | None:
        o = rollouts.c
        query = select(rollouts).where(route.where(rollouts)).order_by(o.started_at.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return RolloutRow.of(row) if row else None

    def running(self) -> list[RolloutRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(rollouts).where(rollouts.c.status == "running")).all()
        return [RolloutRow.of(r) for r in rows]

    def _route(self, conn: Connection, route: RouteKey) -> Any:
        row = conn.execute(select(routes).where(route.where(routes, "name"))).first()
        if row is None:
            raise GatewayError(404, "not_found", f"no route '{route.name}'")
        return row

    def _version(self, conn: Connection, route: RouteKey, number: int) -> Any:
        v = route_versions.c
        row = conn.execute(
            select(route_versions).where(route.where(route_versions), v.number == number)
        ).first()
        if row is None:
            raise GatewayError(404, "not_found", f"route '{route.name}' has no version v{number}")
        return row

    @staticmethod
    def _audit(
        conn: Connection,
        by: Actor,
        action: str,
        route: RouteKey,
        detail: dict[str, Any],
    ) -> None:
        """The change's audit row, in its transaction: about the route's tenant (a shared
        route's: the actor's)."""
        event = by.event(action, target=route.name, tenant=route.tenant, detail=detail)
        AuditLog.write(conn, event)

    def attestations_of(self, conn: Connection, route: RouteKey, version: int) -> list[Attestation]:
        a = attestations.c
        rows = conn.execute(
            select(a.kind, a.result, a.by)
            .where(route.where(attestations), a.version == version)
            .order_by(a.id)
        ).all()
        return [Attestation(r.kind, r.result, r.by) for r in rows]

    # -- attestations ------------------------------------------------------------------

    def attest(
        self,
        route: RouteKey,
        version: int,
        kind: str,
        result: str,
        by: Actor,
        note: str | None,
        url: str | None,
    ) -> dict[str, Any]:
        """Record evidence on a version, attributed to `by`."""
        now = datetime.now(UTC)
        out = {
            "route": route.name,
            "version": version,
            "kind": kind,
            "result": result,
            "by": by.name,
        }
        with self.engine.begin() as conn:
            self._route(conn, route)
            self._version(conn, route, version)
            conn.execute(
                insert(attestations).values(
                    scope=route.scope, route=route.name, version=version, kind=kind,
                    result=result, by=by.name, note=note, url=url, at=now,
                )
            )  # fmt: skip
            RouteStore.append_event(
                conn, route, "attestation", version=version, actor=by.name, reason=note,
                detail={"kind": kind, "result": result, "url": url}, at=now,
            )  # fmt: skip
            self._audit(conn, by, "version.attest", route, {**out, "note": note, "url": url})
        return out

    # -- starting ----------------------------------------------------------------------

    def start(
        self, route: RouteKey, to: int, plan_name: str, plan: Plan, by: Actor, reason: str | None
    ) -> RolloutRow:
        """Check the gate of the route's risk tier, then start at the plan's first stage."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            r = self._route(conn, route)
            candidate = self._version(conn, route, to)
            if r.stable_version == to:
                raise _conflict(f"v{to} is already the stable version of route '{route.name}'")
            if self._active_in(conn, route):
                raise _conflict(f"route '{route.name}' already has a rollout in progress")
            missing = missing_evidence(
                r.risk_tier,
                candidate.author or "",
                self.attestations_of(conn, route, to),
                has_message=bool((candidate.message or "").strip()),
            )
            gate = {"risk_tier": r.risk_tier, "missing": missing}
            if missing:
                refused = GatewayError(
                    409,
                    "gate_refused",
                    f"route '{route.name}' is risk tier {r.risk_tier}: v{to} still needs "
                    + "; ".join(missing),
                )
            else:
                refused = None
        if refused is not None:
            # the refusal is on the timeline too: on-call reads why nothing moved
            with self.engine.begin() as conn:
                RouteStore.append_event(
                    conn, route, "gate", version=to, actor=by.name, reason="refused",
                    detail=gate, at=now,
                )  # fmt: skip
            raise refused
        with self.engine.begin() as conn:
            if self._active_in(conn, route):
                raise _conflict(f"route '{route.name}' already has a rollout in progress")
            rid = "ro_" + secrets.token_hex(8)
            conn.execute(
                insert(rollouts).values(
                    id=rid, scope=route.scope, route=route.name,
                    stable_version=r.stable_version, candidate_version=to,
                    plan_name=plan_name, plan=plan.model_dump(), stage=0, stage_started_at=now,
                    stage_starts=[now.isoformat()], status="running", started_at=now,
                    started_by=by.name, reason=reason,
                )
            )  # fmt: skip
            RouteStore.append_event(
                conn, route, "gate", version=to, actor=by.name, reason="passed", detail=gate,
                at=now,
            )  # fmt: skip
            RouteStore.append_event(
                conn, route, "rollout_start", version=to, actor=by.name, reason=reason,
                detail={"rollout": rid, "from": r.stable_version, "plan": plan_name}, at=now,
            )  # fmt: skip
            RouteStore.append_event(
                conn, route, "rollout_stage", version=to, actor=by.name,
                detail={"rollout": rid, "stage": 0, "percent": plan.stages[0].percent}, at=now,
            )  # fmt: skip
            self._audit(
                conn, by, "rollout.start", route,
                {"rollout": rid, "from": r.stable_version, "to": to, "plan": plan_name,
                 "reason": reason},
            )  # fmt: skip
        found = self.current(route)
        assert found is not None
        return found

    def _active_in(self, conn: Connection, route: RouteKey) -> bool:
        o = rollouts.c
        active = select(o.id).where(route.where(rollouts), o.status.in_(ACTIVE))
        return conn.execute(active).first() is not None

    # -- moving ------------------------------------------------------------------------

    def record_decision(self, ro: RolloutRow, decision: dict[str, Any], changed: bool) -> None:
        """Keep the newest decision; put it on the timeline when it says something new."""
        with self.engine.begin() as conn:
            conn.execute(
                update(rollouts).where(rollouts.c.id == ro.id).values(last_decision=decision)
            )
            if changed:
                RouteStore.append_event(
                    conn, ro.key, "decision", version=ro.candidate_version,
                    actor="controller", reason="; ".join(decision["reasons"]), detail=decision,
                )  # fmt: skip

    def advance(self, ro: RolloutRow, by: Actor, decision: dict[str, Any] | None) -> bool:
        """Next stage; False when another process moved this rollout first."""
        now = datetime.now(UTC)
        stage = ro.stage + 1
        with self.engine.begin() as conn:
            done = conn.execute(
                update(rollouts)
                .where(rollouts.c.id == ro.id, rollouts.c.stage == ro.stage,
                       rollouts.c.status == "running")
                .values(stage=stage, stage_started_at=now, last_decision=decision,
                        stage_starts=[*(t.isoformat() for t in ro.stage_starts), now.isoformat()])
            ).rowcount  # fmt: skip
            if not done:
                return False
            why = "; ".join(decision["reasons"]) if decision else None
            percent = ro.plan.stages[stage].percent
            RouteStore.append_event(
                conn, ro.key, "rollout_stage", version=ro.candidate_version, actor=by.name,
                reason=why,
                detail={"rollout": ro.id, "stage": stage, "percent": percent,
                        "decision": decision},
                at=now,
            )  # fmt: skip
            self._audit(
                conn, by, "rollout.advance", ro.key,
                {"rollout": ro.id, "version": ro.candidate_version, "stage": stage,
                 "percent": percent, "reason": why},
            )  # fmt: skip
        return True

    def finish(
        self,
        ro: RolloutRow,
        status: str,
        by: Actor,
        reason: str | None,
        decision: dict[str, Any] | None = None,
        from_status: tuple[str, ...] = ACTIVE,
    ) -> bool:
        """End a rollout: `promoted` makes the candidate stable (the old stable stays
        pinned as the rollback target); `rolled_back` and `aborted` leave stable as is."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(rollouts)
                .where(rollouts.c.id == ro.id, rollouts.c.status.in_(from_status))
                .values(status=status, ended_at=now, last_decision=decision or ro.last_decision)
            ).rowcount
            if not done:
                return False
            if status == "promoted":
                conn.execute(
                    update(routes)
                    .where(ro.key.where(routes, "name"))
                    .values(
                        stable_version=ro.candidate_version,
                        previous_stable_version=ro.stable_version,
                        updated_at=now,
                    )
                )
            kind = {"promoted": "promote", "rolled_back": "rollback", "aborted": "abort"}[status]
            RouteStore.append_event(
                conn, ro.key, kind, version=ro.candidate_version, actor=by.name, reason=reason,
                detail={"rollout": ro.id, "decision": decision}, at=now,
            )  # fmt: skip
            self._audit(
                conn, by, f"rollout.{kind}", ro.key,
                {"rollout": ro.id, "version": ro.candidate_version,
                 "stable_version": ro.stable_version, "stage": ro.stage, "reason": reason},
            )  # fmt: skip
        return True

    def set_paused(self, ro: RolloutRow, paused: bool, by: Actor, reason: str | None) -> bool:
        now = datetime.now(UTC)
        want, was = ("paused", "running") if paused else ("running", "paused")
        with self.engine.begin() as conn:
            values: dict[str, Any] = {"status": want}
            if not paused:
                values["stage_started_at"] = now  # the stage's clock restarts on resume
            done = conn.execute(
                update(rollouts)
                .where(rollouts.c.id == ro.id, rollouts.c.status == was)
                .values(**values)
            ).rowcount
            if done:
                move = "pause" if paused else "resume"
                RouteStore.append_event(
                    conn, ro.key, move, version=ro.candidate_version, actor=by.name,
                    reason=reason, detail={"rollout": ro.id, "stage": ro.stage}, at=now,
                )  # fmt: skip
                self._audit(
                    conn, by, f"rollout.{move}", ro.key,
                    {"rollout": ro.id, "version": ro.candidate_version, "stage": ro.stage,
                     "reason": reason},
                )  # fmt: skip
        return bool(done)

    def stable_history(self, conn: Connection, key: RouteKey, route: Any) -> list[int]:
        """The versions that have served as the route's stable version, in order: its
        first version, every promotion and every rollback (from the timeline)."""
        e = route_events.c
        rows = conn.execute(
            select(e.kind, e.version, e.detail)
            .where(key.where(route_events), e.kind.in_(("apply", "promote", "rollback")))
            .order_by(e.id)
        ).all()
        seen: list[int] = []
        for kind, version, detail in rows:
            if kind == "apply" and not (detail or {}).get("stable"):
                continue
            # a rollout's automatic rollback is logged with the candidate: it never served
            if kind == "rollback" and (detail or {}).get("to") != version:
                continue
            if version is not None and version not in seen:
                seen.append(version)
        for number in (route.stable_version, route.previous_stable_version):
            if number is not None and number not in seen:
                seen.append(number)
        return seen

    def rollback(
        self,
        route: RouteKey,
        to: int | None,
        by: Actor,
        reason: str | None,
        *,
        override_gate: bool = False,
    ) -> tuple[int, bool]:
        """Serve `to` (default: the pinned previous stable, or the running rollout's stable)
        from the next request on; a rollout in progress ends as rolled back.

        A rollback only goes back: `to` must have been stable on the route before. Going
        forward is a rollout, through the gate; `override_gate` (an admin's emergency,
        checked by the caller) skips that, and the timeline marks it. Returns the version
        now stable and whether the gate was overridden."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            r = self._route(conn, route)
            o = rollouts.c
            active = conn.execute(
                select(rollouts).where(route.where(rollouts), o.status.in_(ACTIVE))
            ).first()
            target = to
            if target is None:
                target = active.stable_version if active else r.previous_stable_version
            if target is None:
                raise _conflict(f"route '{route.name}' has no earlier stable version to return to")
            candidate = self._version(conn, route, target)
            history = self.stable_history(conn, route, r)
            forward = target not in history
            missing: list[str] = []
            if forward:
                missing = missing_evidence(
                    r.risk_tier,
                    candidate.author or "",
                    self.attestations_of(conn, route, target),
                    has_message=bool((candidate.message or "").strip()),
                )
                if not override_gate:
                    allowed = ", ".join(f"v{n}" for n in sorted(history)) or "none"
                    raise GatewayError(
                        409,
                        "not_a_rollback",
                        f"route '{route.name}': v{target} has never been its stable version, so "
                        f"serving it is a move forward, not a rollback; a rollback returns to "
                        f"a version that has been stable before ({allowed}). To serve "
                        f"v{target}, start a rollout (trimtab rollout start {route.name} --to "
                        f"v{target}), which checks the risk tier {r.risk_tier} gate",
                        param="to",
                    )
                RouteStore.append_event(
                    conn, route, "gate_override", version=target, actor=by.name, reason=reason,
                    detail={"risk_tier": r.risk_tier, "missing": missing,
                            "from": r.stable_version},
                    at=now,
                )  # fmt: skip
            if active is not None:
                conn.execute(
                    update(rollouts)
                    .where(o.id == active.id)
                    .values(status="rolled_back", ended_at=now)
                )
            if target != r.stable_version:
                conn.execute(
                    update(routes)
                    .where(route.where(routes, "name"))
                    .values(
                        stable_version=target,
                        previous_stable_version=r.stable_version,
                        updated_at=now,
                    )
                )
            detail: dict[str, Any] = {
                "from": r.stable_version,
                "to": target,
                "rollout": active.id if active else None,
            }
            if forward:
                detail["override_gate"] = True
                detail["missing"] = missing
            RouteStore.append_event(
                conn, route, "rollback", version=target, actor=by.name, reason=reason,
                detail=detail, at=now,
            )  # fmt: skip
            detail["override_gate"] = forward
            self._audit(conn, by, "route.rollback", route, {**detail, "reason": reason})
        return target, forward

    # -- what the canary analysis reads ------------------------------------------------

    def arms(
        self, ro: RolloutRow, start: datetime, end: datetime | None
    ) -> tuple[ArmStats, ArmStats]:
        """Stable and candidate over one window, ``start <= started_at < end``: the same
        time, at one traffic split."""
        return (
            self._arm(ro.key, ro.stable_version, start, end),
            self._arm(ro.key, ro.candidate_version, start, end),
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
        ]
        if end is not None:
            within.append(c.started_at < end)
        cost = func.coalesce(c.cost_usd, 0.0)
        reasons = cast(c.finish_reasons, Text)
        refused = or_(*(reasons.like(f'%"{r}"%') for r in REFUSAL_FINISH_REASONS))
        totals = select(
            func.count(),
            func.coalesce(func.sum(case((c.status_code >= 500, 1), else_=0)), 0),
            func.coalesce(func.sum(case((refused, 1), else_=0)), 0),
            func.coalesce(func.sum(cost), 0.0),
            func.coalesce(func.sum(cost * cost), 0.0),
        ).where(*within)
        latencies = select(c.duration_ms).where(*within).limit(MAX_LATENCY_ROWS)
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
            n, errors, refusals, cost_sum, cost_sq_sum = conn.execute(totals).one()
            durations = conn.execute(latencies).scalars().all()
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
        )

    # -- feedback ----------------------------------------------------------------------

    def add_feedback(
        self,
        request_id: str,
        tenant: str | None,
        score: float,
        comment: str | None,
        escalated: bool,
        by: Actor,
    ) -> dict[str, Any]:
        """Join the request's route and version; `tenant` None: any tenant (admin)."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(requests.c.tenant, requests.c.route, requests.c.version).where(
                    requests.c.id == request_id
                )
            ).first()
            if row is None or (tenant is not None and row.tenant != tenant):
                raise GatewayError(404, "not_found", f"no request with id '{request_id}'")
            negative = score < 0.5 or escalated
            conn.execute(
                insert(feedback).values(
                    request_id=request_id, tenant=row.tenant, route=row.route,
                    version=row.version, score=score, negative=negative, comment=comment,
                    escalated=escalated, by=by.name or None, at=now,
                )
            )  # fmt: skip
            out = {
                "request_id": request_id,
                "route": row.route,
                "version": row.version,
                "score": score,
                "negative": negative,
                "escalated": escalated,
            }
            AuditLog.write(
                conn, by.event("feedback.add", target=request_id, tenant=row.tenant, detail=out)
            )
        return out
