"""The SLO evaluator: every few seconds, judge every SLO's alert rules and say what it sees
to the alert pipeline; during a rollout, judge the candidate's traffic on its own too and
roll the rollout back when that pages.

One evaluator is active per store, however many server processes share it: each cycle
starts by taking or renewing the lease `slo-evaluator` (store/leases.py); a process
without it reads nothing and says nothing. The holder renews once more after reading,
before it rolls anything back or emits, so one that stalled past its TTL (and was taken
over) drops what it read instead of acting twice.

Each cycle says what it sees, level-triggered: one signal per SLO and rule, firing or
cleared (`ok`, or `too_little_data`: a rule below its minimum of events does not page),
with the dedup key `slo_burn/<slo>/<rule>` (`<tenant>:<slo>` for a tenant's own SLO,
`<rule>` as `page-1h-5m`). The alert store turns the first firing one into an alert,
updates it with the next, resolves it on a cleared one; a new holder repeats the
current state, so a takeover loses nothing.

The candidate's burn: the per-minute rollups carry the route version, so while a rollout
is running or paused, every SLO over its route is judged again on the candidate version's
minutes since the rollout started alone (the same rules and minimum of events). A 10 %
canary failing completely is then caught when the route's overall burn is still under
the factors. Those signals carry the label `version` and the key
`slo_burn/<slo>/<rule>/v<n>`; a page among them ends the rollout as rolled back through
the rollout store, with a reason that names the SLO and the burn. The rollouts arrive
through `Rollouts` (the rollout store satisfies it: slo/ sits beside rollouts/ and does
not import it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Engine

from trimtab.alerts.signal import Signal
from trimtab.audit.log import Actor
from trimtab.refresher import Periodic
from trimtab.registry.store import RouteStore
from trimtab.slo.burn import RuleVerdict
from trimtab.slo.kinds import by_version, read_together, share
from trimtab.slo.rollups import minute_floor, read_windows
from trimtab.slo.spec import Selector, SloDefinition
from trimtab.slo.status import SloStatus, judged, minutes_label
from trimtab.slo.store import SloRow, SloStore
from trimtab.store.leases import Lease, Leases, holder_id
from trimtab.telemetry.hourly import compact

log = logging.getLogger("trimtab.slo")

LEASE = "slo-evaluator"
ACTOR = Actor.system("slo-evaluator")
INTERVAL_S = 30.0
TTL_INTERVALS = 3  # the lease outlives two missed cycles; a third hands it over
# a candidate's alert resolves by itself this many lease TTLs after it was last said: its
# rollout ended and the holder that would have cleared it is gone (a takeover, a restart)
CANDIDATE_EXPIRY_TTLS = 2


class ActiveRollout(Protocol):
    """What the evaluator reads of a rollout in progress (rollouts.row.RolloutRow)."""

    @property
    def id(self) -> str: ...
    @property
    def route(self) -> str: ...
    @property
    def scope(self) -> str: ...  # the route's tenant, "" when shared
    @property
    def stable_version(self) -> int: ...
    @property
    def candidate_version(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...


R = TypeVar("R", bound=ActiveRollout)


class Rollouts(Protocol[R]):
    """The rollout store's part the evaluator uses (rollouts.store.RolloutStore)."""

    def active(self) -> list[R]: ...

    def finish(
        self,
        ro: R,
        status: str,
        by: Actor,
        reason: str | None,
        decision: dict[str, Any] | None = None,
    ) -> bool: ...


# called on the event loop with each cycle's signals: it must not block (a coroutine
# function is awaited); `submitting(AlertRuntime.submit)` is the server's
Emit = Callable[[Sequence[Signal]], object]


def submitting(submit: Callable[[Signal], None]) -> Emit:
    """An emit that hands each signal to a non-blocking `submit` (the alert runtime's)."""

    def emit(signals: Sequence[Signal]) -> None:
        for signal in signals:
            submit(signal)

    return emit


@dataclass(frozen=True, slots=True)
class Rollback:
    rollout: str
    route: str
    version: int
    reason: str
    done: bool  # False: the rollout had moved meanwhile (the controller ended it first)


@dataclass(slots=True)
class Cycle:
    """What one cycle did."""

    at: datetime
    lease: Lease | None  # None: another process holds it; nothing was read or said
    signals: list[Signal] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    slos: int = 0  # SLOs judged on the route's traffic
    candidates: int = 0  # (SLO, rollout) pairs judged on the candidate's traffic

    @property
    def held(self) -> bool:
        return self.lease is not None


def rule_id(v: RuleVerdict) -> str:
    """`page-1h-5m`: the rule's severity and its two windows."""
    r = v.rule
    return f"{r.severity}-{minutes_label(r.long_minutes)}-{minutes_label(r.short_minutes)}"


def slo_ref(row: SloRow) -> str:
    return row.definition.name if not row.scope else f"{row.scope}:{row.definition.name}"


def _times(b: float | None) -> str:
    return "no data" if b is None else f"{b:,.1f}x"


def _signals(
    row: SloRow,
    status: SloStatus,
    owner: str | None,
    rollout: str | None = None,
    expires_at: datetime | None = None,
) -> list[Signal]:
    """One signal per rule of `status` (of the row's SLO, or of it narrowed to the
    candidate version of `rollout`, its alerts resolving by themselves at `expires_at`
    unless a later cycle says them again)."""
    d = status.slo
    tenant = row.scope or None
    version = d.selector.version
    view = status.view(tenant)
    labels = {
        k: v
        for k, v in (
            ("slo", d.name),
            ("route", d.selector.route),
            ("model", d.selector.model),
            ("tenant", d.selector.tenant or tenant),
            ("feature", d.selector.feature),
            ("owner", owner),
            ("version", version),
        )
        if v is not None
    }
    out = []
    for verdict, rule_view in zip(status.rules, view["alerts"], strict=True):
        rid = rule_id(verdict)
        key = f"slo_burn/{slo_ref(row)}/{rid}" + (f"/{version}" if version else "")
        what = f"SLO {d.name}" + (f" on the candidate {version}" if version else "")
        long, short = verdict.long, verdict.short
        burns = (
            f"{_times(long.rate)} over {minutes_label(long.minutes)} and "
            f"{_times(short.rate)} over {minutes_label(short.minutes)}"
        )
        if verdict.state == "firing":
            summary = (
                f"{what}: burning its error budget {burns} "
                f"({verdict.rule.severity} above {verdict.rule.factor:g}x)"
            )
        elif verdict.state == "ok":
            summary = f"{what}: {rid} clear, burn {burns}"
        else:
            summary = (
                f"{what}: {rid} clear, too little data "
                f"({long.counts.valid} and {short.counts.valid} events, "
                f"{long.min_events} needed in each window)"
            )
        details: dict[str, object] = {
            "slo": d.name,
            "tenant": tenant,
            "rule": rid,
            **rule_view,
            "objective": d.objective,
            "sli": status.value,
            "budget_remaining_share": status.budget.remaining_share,
        }
        if version is not None:
            details["candidate"] = version
            details["rollout"] = rollout
        out.append(
            Signal(
                source="slo_burn",
                dedup_key=key,
                severity=verdict.rule.severity,
                firing=verdict.state == "firing",
                summary=summary,
                at=status.at,
                labels=labels,
                details=details,
                expires_at=expires_at,
            )
        )
    return out


def _candidate_definition(d: SloDefinition, ro: ActiveRollout) -> SloDefinition | None:
    """The SLO narrowed to the candidate's traffic, or None when it does not judge the
    rollout's route or its SLI keeps no route version (a session's cost)."""
    s = d.selector
    if s.route != ro.route or not by_version(d.sli):
        return None
    if ro.scope and s.tenant not in (None, ro.scope):
        return None
    # a tenant's own route is its tenant's records of that name
    narrowed = dataclasses.replace(
        s, version=f"v{ro.candidate_version}", tenant=ro.scope or s.tenant
    )
    return dataclasses.replace(d, selector=narrowed)


def _spans(d: SloDefinition) -> set[int]:
    return {d.window_minutes, *(m for r in d.rules for m in (r.long_minutes, r.short_minutes))}


def read_statuses(
    engine: Engine, definitions: Sequence[SloDefinition], now: datetime
) -> list[SloStatus]:
    """Each SLO's status at `now`, as `status.read_status` gives it; the SLOs of one
    selector whose SLIs share a read (slo/kinds.py: every summed kind in one query over
    each window, the sketched ones one read of all their sketch columns, each decoded once)
    share it; every read on one connection (one checkout and its ping)."""
    out: dict[int, SloStatus] = {}
    groups: dict[tuple[Selector, Hashable], list[int]] = {}
    for i, d in enumerate(definitions):
        groups.setdefault((d.selector, share(d.sli)), []).append(i)
    end = minute_floor(now)
    with engine.connect() as conn:
        for (selector, _), members in groups.items():
            spans = sorted(set().union(*(_spans(definitions[i]) for i in members)))
            slis = [definitions[i].sli for i in members]
            read = read_together(conn, selector, slis, end, spans)
            for i, got in zip(members, read, strict=True):
                d = definitions[i]
                out[i] = judged(d, {w: got[w] for w in _spans(d)}, now)
    return [out[i] for i in range(len(definitions))]


def candidate_status(
    engine: Engine, d: SloDefinition, started_at: datetime, now: datetime
) -> SloStatus | None:
    """The status of `d` (narrowed to a candidate) over the minutes since its rollout
    started: each window clipped to them. None before the rollout's first minute."""
    age = int((minute_floor(now) - minute_floor(started_at)) / timedelta(minutes=1)) + 1
    if age < 1:
        return None
    spans = _spans(d)
    clipped = {w: min(w, age) for w in spans}
    got = read_windows(engine, d, now, set(clipped.values()))
    return judged(d, {w: got[clipped[w]] for w in spans}, now)


def rollback_reason(d: SloDefinition, ro: ActiveRollout, verdict: RuleVerdict) -> str:
    long, short = verdict.long, verdict.short
    return (
        f"SLO {d.name} pages on the candidate v{ro.candidate_version}'s own traffic: burn "
        f"{_times(long.rate)} over {minutes_label(long.minutes)} "
        f"({long.counts.bad} of {long.counts.valid} bad) and {_times(short.rate)} over "
        f"{minutes_label(short.minutes)} ({short.counts.bad} of {short.counts.valid}), "
        f"above {verdict.rule.factor:g}x (objective {d.objective:g})"
    )


class SloEvaluator(Generic[R]):
    """Judges every SLO each `interval_s` while it holds the lease, and hands the signals
    to `emit`; rolls back a rollout whose candidate pages (then awaits `on_rollback`, the
    route table's refresh, so this process stops serving the candidate at once)."""

    def __init__(
        self,
        engine: Engine,
        emit: Emit,
        *,
        rollouts: Rollouts[R] | None = None,
        on_rollback: Callable[[], Awaitable[object]] | None = None,
        interval_s: float = INTERVAL_S,
        ttl_s: float | None = None,
        holder: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.slos = SloStore(engine)
        self.routes = RouteStore(engine)
        self.leases = Leases(engine)
        self.holder = holder or holder_id()
        self.ttl_s = ttl_s if ttl_s is not None else TTL_INTERVALS * interval_s
        self._emit = emit
        self._rollouts = rollouts
        self._on_rollback = on_rollback
        self._clock = clock
        # candidate keys this holder last said were firing: cleared once the rollout ends
        self._candidates_firing: dict[str, Signal] = {}
        # a cycle's thread runs on when its task is cancelled: stop() waits for it under
        # this lock before giving the lease up, and no cycle starts after that
        self._cycle_lock = threading.Lock()
        self._stopped = False
        self._loop = Periodic(
            "trimtab-slo-evaluator",
            self.tick,
            interval_s,
            failed="SLO evaluator cycle failed",
            logger=log,
            wait_first=False,
        )

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop the loop and give the lease up, so another process takes over at once
        (after the cycle in flight, if any, has finished in its thread)."""
        self._stopped = True
        await self._loop.stop()
        try:
            await asyncio.to_thread(self._release)
        except Exception:  # the store is down: the lease runs out by itself
            log.warning("could not release the SLO evaluator's lease", exc_info=True)

    async def tick(self) -> Cycle:
        """One cycle in a thread, then its signals to `emit` (on the loop) and, after a
        rollback, the route table's refresh."""
        cycle = await asyncio.to_thread(self.cycle, self._clock())
        if cycle.signals:
            emitted = self._emit(cycle.signals)
            if inspect.isawaitable(emitted):
                await emitted
        if self._on_rollback is not None and any(r.done for r in cycle.rollbacks):
            await self._on_rollback()
        return cycle

    def _release(self) -> None:
        with self._cycle_lock:
            self.leases.release(LEASE, self.holder)

    def cycle(self, now: datetime) -> Cycle:
        """Take or renew the lease; when held, judge every SLO (and every candidate in a
        rollout), renew again, roll back what pages on its candidate; the signals to emit."""
        with self._cycle_lock:
            if self._stopped:
                return Cycle(now, None)
            return self._cycle(now)

    def _cycle(self, now: datetime) -> Cycle:
        started = time.monotonic()
        if self.leases.acquire(LEASE, self.holder, self.ttl_s, now) is None:
            self._candidates_firing.clear()  # the holder speaks for them now
            return Cycle(now, None)
        rows = self.slos.listed(None)
        owners = {(r.tenant or "", r.name): r.owner for r in self.routes.list_routes("", True)}

        def owner(scope: str, route: str | None) -> str | None:
            if route is None:
                return None
            return owners.get((scope, route)) or owners.get(("", route))

        signals: list[Signal] = []
        compact(self.engine, now)  # closed hours into the hourly rollups the reads take
        statuses = read_statuses(self.engine, [row.definition for row in rows], now)
        for row, status in zip(rows, statuses, strict=True):
            signals += _signals(row, status, owner(row.scope, row.definition.selector.route))
        pages: list[tuple[R, SloDefinition, RuleVerdict]] = []
        candidates = 0
        firing_now: dict[str, Signal] = {}
        for ro in self._rollouts.active() if self._rollouts is not None else []:
            paged: tuple[SloDefinition, RuleVerdict] | None = None
            for row in rows:
                d = _candidate_definition(row.definition, ro)
                if d is None:
                    continue
                seen = candidate_status(self.engine, d, ro.started_at, now)
                if seen is None:
                    continue
                candidates += 1
                until = now + timedelta(seconds=CANDIDATE_EXPIRY_TTLS * self.ttl_s)
                for s in _signals(row, seen, owner(ro.scope, ro.route), ro.id, until):
                    signals.append(s)
                    if s.firing:
                        firing_now[s.dedup_key] = s
                verdict = next(
                    (v for v in seen.rules if v.state == "firing" and v.rule.severity == "page"),
                    None,
                )
                if paged is None and verdict is not None:
                    paged = (row.definition, verdict)
            if paged is not None:
                pages.append((ro, *paged))
        # candidates that were firing and are no longer judged (their rollout ended)
        judged_keys = {s.dedup_key for s in signals}
        for key, s in self._candidates_firing.items():
            if key not in judged_keys:
                what = f"SLO {s.details['slo']} on the candidate {s.labels.get('version')}"
                summary = f"{what}: {s.details['rule']} clear, its rollout has ended"
                signals.append(dataclasses.replace(s, firing=False, at=now, summary=summary))
        # renewed as of now: the time this cycle has taken counts against the TTL
        renew_at = now + timedelta(seconds=time.monotonic() - started)
        lease = self.leases.acquire(LEASE, self.holder, self.ttl_s, renew_at)
        if lease is None:  # taken over while reading: the new holder says it
            self._candidates_firing.clear()
            return Cycle(now, None)
        self._candidates_firing = firing_now
        rollbacks = []
        for ro, d, verdict in pages:
            assert self._rollouts is not None  # pages come from its rollouts
            reason = rollback_reason(d, ro, verdict)
            decision: dict[str, Any] = {
                "action": "rollback",
                "at": now.isoformat(),
                "reasons": [reason],
                "metrics": [],
                "slo": d.name,
                "rule": rule_id(verdict),
                "burn": {"long": verdict.long.rate, "short": verdict.short.rate},
            }
            done = self._rollouts.finish(ro, "rolled_back", ACTOR, reason, decision)
            if done:
                log.warning("rolled back rollout %s on route %s: %s", ro.id, ro.route, reason)
            rollbacks.append(Rollback(ro.id, ro.route, ro.candidate_version, reason, done))
        return Cycle(now, lease, signals, rollbacks, len(rows), candidates)
