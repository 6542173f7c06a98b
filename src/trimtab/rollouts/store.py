"""Rollouts in the store: start (through the gate), advance, finish, pause, roll back;
every change also lands on the route's timeline and the audit log, in its transaction.

The evidence a rollout reads has its own modules: attestations.py (the gate's), feedback.py,
and arms.py (what the canary analysis reads per window).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from trimtab.audit.log import Actor
from trimtab.canary.forecast import Forecast
from trimtab.canary.gates import missing_evidence
from trimtab.canary.plans import Plan
from trimtab.errors import Conflict
from trimtab.registry.scope import RouteKey
from trimtab.registry.stable import set_stable
from trimtab.registry.timeline import append_event
from trimtab.rollouts.arms import ArmReader
from trimtab.rollouts.attestations import AttestationStore
from trimtab.rollouts.feedback import FeedbackStore
from trimtab.rollouts.forecasting import route_forecast
from trimtab.rollouts.lookup import audit, route_row, version_row
from trimtab.rollouts.row import ACTIVE, RolloutRow
from trimtab.store.tables import rollouts, route_events


class RolloutStore:
    """The rollouts table, with the route's attestations, feedback and arms beside it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.attestations = AttestationStore(engine)
        self.feedback = FeedbackStore(engine)
        self.arms = ArmReader(engine)

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

    def active(self) -> list[RolloutRow]:
        """The rollouts sending traffic to a candidate: running and paused ones."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(rollouts).where(rollouts.c.status.in_(ACTIVE))).all()
        return [RolloutRow.of(r) for r in rows]

    # -- starting ----------------------------------------------------------------------

    def start(
        self, route: RouteKey, to: int, plan_name: str, plan: Plan, by: Actor, reason: str | None
    ) -> RolloutRow:
        """Check the gate of the route's risk tier, then start at the plan's first stage."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            r = route_row(conn, route)
            candidate = version_row(conn, route, to)
            if r.stable_version == to:
                raise Conflict(f"v{to} is already the stable version of route '{route.name}'")
            if self._active_in(conn, route):
                raise Conflict(f"route '{route.name}' already has a rollout in progress")
            evidence = AttestationStore.evidence(conn, route, to)
            missing = missing_evidence(
                r.risk_tier,
                candidate.author or "",
                evidence.attestations,
                has_message=bool((candidate.message or "").strip()),
                eval_problems=evidence.problems,
            )
            gate = {"risk_tier": r.risk_tier, "missing": missing}
            if missing:
                refused: Conflict | None = Conflict(
                    f"route '{route.name}' is risk tier {r.risk_tier}: v{to} still needs "
                    + "; ".join(missing),
                    code="gate_refused",
                )
            else:
                refused = None
        if refused is not None:
            # the refusal is on the timeline too: on-call reads why nothing moved
            with self.engine.begin() as conn:
                append_event(
                    conn, route, "gate", version=to, actor=by.name, reason="refused",
                    detail=gate, at=now,
                )  # fmt: skip
            raise refused
        plan = plan.for_tier(r.risk_tier)  # the rules judged by, stored with the rollout
        with self.engine.begin() as conn:
            if self._active_in(conn, route):
                raise Conflict(f"route '{route.name}' already has a rollout in progress")
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
            append_event(
                conn, route, "gate", version=to, actor=by.name, reason="passed", detail=gate,
                at=now,
            )  # fmt: skip
            append_event(
                conn, route, "rollout_start", version=to, actor=by.name, reason=reason,
                detail={"rollout": rid, "from": r.stable_version, "plan": plan_name}, at=now,
            )  # fmt: skip
            append_event(
                conn, route, "rollout_stage", version=to, actor=by.name,
                detail={"rollout": rid, "stage": 0, "percent": plan.stages[0].percent}, at=now,
            )  # fmt: skip
            audit(
                conn, by, "rollout.start", route,
                {"rollout": rid, "from": r.stable_version, "to": to, "plan": plan_name,
                 "reason": reason},
            )  # fmt: skip
        found = self.current(route)
        assert found is not None
        return found

    def forecast(self, route: RouteKey, plan: Plan, plan_name: str) -> Forecast:
        """What ``plan`` (for the route's risk tier) is expected to do on the route's recent
        traffic, if a candidate matched its stable version (canary/forecast.py)."""
        with self.engine.connect() as conn:
            r = route_row(conn, route)
        tiered = plan.for_tier(r.risk_tier)
        return route_forecast(self.arms, route, r.stable_version, tiered, plan_name)

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
                append_event(
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
            append_event(
                conn, ro.key, "rollout_stage", version=ro.candidate_version, actor=by.name,
                reason=why,
                detail={"rollout": ro.id, "stage": stage, "percent": percent,
                        "decision": decision},
                at=now,
            )  # fmt: skip
            audit(
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
                set_stable(conn, ro.key, ro.candidate_version, previous=ro.stable_version, at=now)
            kind = {"promoted": "promote", "rolled_back": "rollback", "aborted": "abort"}[status]
            append_event(
                conn, ro.key, kind, version=ro.candidate_version, actor=by.name, reason=reason,
                detail={"rollout": ro.id, "decision": decision}, at=now,
            )  # fmt: skip
            audit(
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
                append_event(
                    conn, ro.key, move, version=ro.candidate_version, actor=by.name,
                    reason=reason, detail={"rollout": ro.id, "stage": ro.stage}, at=now,
                )  # fmt: skip
                audit(
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
            r = route_row(conn, route)
            o = rollouts.c
            active = conn.execute(
                select(rollouts).where(route.where(rollouts), o.status.in_(ACTIVE))
            ).first()
            target = to
            if target is None:
                target = active.stable_version if active else r.previous_stable_version
            if target is None:
                raise Conflict(f"route '{route.name}' has no earlier stable version to return to")
            candidate = version_row(conn, route, target)
            history = self.stable_history(conn, route, r)
            forward = target not in history
            missing: list[str] = []
            if forward:
                missing = missing_evidence(
                    r.risk_tier,
                    candidate.author or "",
                    AttestationStore.of(conn, route, target),
                    has_message=bool((candidate.message or "").strip()),
                )
                if not override_gate:
                    allowed = ", ".join(f"v{n}" for n in sorted(history)) or "none"
                    raise Conflict(
                        f"route '{route.name}': v{target} has never been its stable version, so "
                        f"serving it is a move forward, not a rollback; a rollback returns to "
                        f"a version that has been stable before ({allowed}). To serve "
                        f"v{target}, start a rollout (trimtab rollout start {route.name} --to "
                        f"v{target}), which checks the risk tier {r.risk_tier} gate",
                        code="not_a_rollback",
                        param="to",
                    )
                append_event(
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
                set_stable(conn, route, target, previous=r.stable_version, at=now)
            detail: dict[str, Any] = {
                "from": r.stable_version,
                "to": target,
                "rollout": active.id if active else None,
            }
            if forward:
                detail["override_gate"] = True
                detail["missing"] = missing
            append_event(
                conn, route, "rollback", version=target, actor=by.name, reason=reason,
                detail=detail, at=now,
            )  # fmt: skip
            detail["override_gate"] = forward
            audit(conn, by, "route.rollback", route, {**detail, "reason": reason})
        return target, forward
