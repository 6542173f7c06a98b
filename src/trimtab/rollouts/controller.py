"""The canary controller: every few seconds, judge each active rollout and act on it.

Regression -> roll back at once; a clean stage past its minimums -> advance (a clean final
stage -> promote); inconclusive past the stage's maximum -> pause for a human. A paused
rollout still sends its share of traffic to the candidate, so it is still judged: a
regression rolls it back, and nothing else moves it until a human resumes it. Every
decision is stored with the statistics behind it.

The evidence adds up over the whole rollout: each stage is one window (one traffic split)
of the same sequential tests, so a rollout is one test at its alpha however many stages it
has, and what the early stages showed still counts at the later ones. A stage's own
minimums (duration, canary requests) still hold it until it has seen its share of traffic.

Moves are conditional updates, so when several gateway processes run a controller each
rollout still moves once per decision. A rollback and a pause for a human are also said
to the alert pipeline (`signals`: source `canary_rollback`, a ticket: the rollback has
contained it, a person looks next), by the process whose move it was. Each move is
audited with the actor "controller" (`rollout.advance`, `rollout.promote`,
`rollout.rollback`, `rollout.pause`), in the move's transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from trimtab.alerts.signal import Signal
from trimtab.audit.log import CONTROLLER
from trimtab.canary.analysis import analyze
from trimtab.canary.arm_stats import ArmStats, UnitCounts
from trimtab.canary.decision import Action, Decision, decide
from trimtab.refresher import Periodic
from trimtab.rollouts.arms import with_quality
from trimtab.rollouts.row import RolloutRow, finite
from trimtab.rollouts.store import RolloutStore
from trimtab.stats.sequential import Verdict

log = logging.getLogger("trimtab.rollouts")

# A window that ended this long ago has all its requests recorded: read once, then kept.
SETTLE_S = 10.0
# ...and all its online scores (the scorer reads the recorded answers every few seconds and
# scores its queue, within its per-minute budget): until then a closed window's scores are
# read again on every tick.
SCORES_SETTLE_S = 300.0


def decision_view(decision: Decision) -> dict[str, Any]:
    """A decision and its statistics as stored JSON."""
    metrics = []
    for m in decision.metrics:
        data = dataclasses.asdict(m) if dataclasses.is_dataclass(m) else {"value": str(m)}
        metrics.append({k: (str(v) if hasattr(v, "value") else v) for k, v in data.items()})
    view: dict[str, Any] = finite(
        {
            "action": str(decision.action),
            "reasons": list(decision.reasons),
            "metrics": metrics,
        }
    )
    return view


class RolloutController:
    def __init__(
        self,
        store: RolloutStore,
        on_change: Callable[[], Awaitable[object]],
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        signals: Callable[[Signal], None] | None = None,
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._clock = clock
        self._signals = signals
        self._loop = Periodic(
            "trimtab-rollout-controller",
            self.tick,
            interval_s,
            failed="rollout controller tick failed",
            logger=log,
            wait_first=False,
        )
        # (rollout id, stage) -> (stable, candidate) of windows that are closed and settled
        self._closed: dict[tuple[str, int], tuple[ArmStats, ArmStats]] = {}
        # the closed windows whose online scores have settled too
        self._scored: set[tuple[str, int]] = set()
        # rollout id -> the route's requests per user before it started (read once)
        self._before: dict[str, UnitCounts] = {}

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def tick(self) -> int:
        """Judge every active rollout once; returns how many changed state."""
        changed = 0
        active = await asyncio.to_thread(self._store.active)
        ids = {ro.id for ro in active}
        self._closed = {k: v for k, v in self._closed.items() if k[0] in ids}
        self._scored = {k for k in self._scored if k[0] in ids}
        self._before = {k: v for k, v in self._before.items() if k in ids}
        for ro in active:
            if await asyncio.to_thread(self.step, ro):
                changed += 1
        if changed:
            await self._on_change()
        return changed

    def step(self, ro: RolloutRow) -> bool:
        """One judgement of one rollout; True when it moved (advanced or ended)."""
        stage = ro.plan.stages[ro.stage]
        stable, candidate = self.windows(ro)
        elapsed = self._clock() - ro.stage_started_at.timestamp()
        # at 100 % there is no stable traffic left to compare with: a clean stage whose
        # next step is 100 % promotes, and that step needs the required metrics to pass
        final = ro.stage + 1 == len(ro.plan.stages) or ro.plan.stages[ro.stage + 1].percent >= 100
        before = self.before(ro) if ro.plan.adjust_for_history else None
        results = analyze(stable, candidate, ro.plan.specs(), before=before)
        if ro.plan.promote_early and all(r.verdict is Verdict.PASS for r in results if r.required):
            final = True  # the evidence the plan asks for is in: the stages left add exposure
        decision = decide(
            results,
            stage,
            elapsed_s=elapsed,
            canary_requests=candidate[-1].n,
            final=final,
            canary_per_s=candidate[-1].n / elapsed if elapsed > 0 else None,
        )
        view = decision_view(decision)
        view["at"] = datetime.now(UTC).isoformat()
        view["stage"] = ro.stage
        view["requests"] = {
            "stable": sum(a.n for a in stable),
            "candidate": sum(a.n for a in candidate),
            "stage_stable": stable[-1].n,
            "stage_candidate": candidate[-1].n,
        }
        reasons = "; ".join(decision.reasons)
        if decision.action is Action.ROLLBACK:
            done = self._store.finish(ro, "rolled_back", CONTROLLER, reasons, view)
            if done:
                self._say(ro, "rolled back", reasons, view)
            return done
        if ro.status == "paused":  # guarded, not moved: a human resumes it
            view["action"] = "paused"
            view["reasons"] = [
                "paused: watched for regressions, moved only when resumed",
                *view["reasons"],
            ]
            new = _signature(ro.last_decision or {}) != _signature(view)
            self._store.record_decision(ro, view, changed=new)
            return False
        if decision.action is Action.ADVANCE:
            if final:
                return self._store.finish(ro, "promoted", CONTROLLER, reasons, view)
            return self._store.advance(ro, CONTROLLER, view)
        if elapsed > stage.max_duration_s:
            why = f"inconclusive after {stage.max_duration_s:.0f} s at {stage.percent:g} %"
            self._store.record_decision(ro, view, changed=True)
            paused = self._store.set_paused(ro, True, CONTROLLER, f"{why}: {reasons}")
            if paused:
                self._say(ro, "paused for a human", f"{why}: {reasons}", view)
            return paused
        # the timeline gets a hold only when its verdicts changed, not on every tick
        new = _signature(ro.last_decision or {}) != _signature(view)
        self._store.record_decision(ro, view, changed=new)
        return False

    def _say(self, ro: RolloutRow, what: str, why: str, view: dict[str, Any]) -> None:
        """A move a person should know of, as a signal: one alert per rollout and move,
        resolved by itself after a day (it is an event, not a condition that clears)."""
        if self._signals is None:
            return
        now = datetime.fromtimestamp(self._clock(), UTC)
        move = "rollback" if what == "rolled back" else "pause"
        labels = {"route": ro.route, "version": f"v{ro.candidate_version}", "rollout": ro.id}
        if ro.key.tenant is not None:
            labels["tenant"] = ro.key.tenant
        self._signals(
            Signal(
                source="canary_rollback",
                dedup_key=f"canary_rollback/{ro.id}/{move}",
                severity="ticket",
                firing=True,
                summary=(
                    f"rollout {ro.id} of route {ro.route}: v{ro.candidate_version} {what} "
                    f"at {ro.percent:g} % ({why})"
                ),
                at=now,
                labels=labels,
                details={"stage": ro.stage, "percent": ro.percent, "decision": view},
                expires_at=now + timedelta(days=1),
            )
        )

    def before(self, ro: RolloutRow) -> UnitCounts:
        """The route's requests per user in the day before the rollout started (its
        users' own rates: the covariate of the clustered tests), read once per rollout."""
        got = self._before.get(ro.id)
        if got is None:
            got = self._before[ro.id] = self._store.arms.before(ro)
        return got

    def windows(self, ro: RolloutRow) -> tuple[list[ArmStats], list[ArmStats]]:
        """Stable's and the candidate's stats, one per stage so far (rollouts/arms.py)."""
        now = self._clock()
        stable: list[ArmStats] = []
        candidate: list[ArmStats] = []
        for k, (start, end) in enumerate(ro.windows()):
            key = (ro.id, k)
            arms = self._closed.get(key)
            ended = None if end is None else now - end.timestamp()
            if arms is None:
                arms = self._store.arms.between(ro, start, end)
                if ended is not None and ended > SETTLE_S:
                    self._closed[key] = arms
            elif key not in self._scored:  # its requests are in; its scores may not be
                q_s, q_c = self._store.arms.quality(ro, start, end)
                arms = (with_quality(arms[0], q_s), with_quality(arms[1], q_c))
                self._closed[key] = arms
            if ended is not None and ended > SCORES_SETTLE_S and key in self._closed:
                self._scored.add(key)
            stable.append(arms[0])
            candidate.append(arms[1])
        return stable, candidate


def _signature(view: dict[str, Any]) -> tuple[Any, ...]:
    verdicts = tuple((m.get("metric"), m.get("verdict")) for m in view.get("metrics", []))
    return (view.get("action"), verdicts)
