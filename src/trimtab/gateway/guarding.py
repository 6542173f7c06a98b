"""Guardrails on the data plane (docs/guardrails.md): the policy of the request's route
version (or the gateway's default), session ceilings in the shared state, input checks
before the provider call, output checks on a whole answer, and every outcome on the record
and in /metrics. The texts the checks scan are found by gateway/guard_texts.py; a streamed
answer is checked by gateway/guarded_relay.py.

A request whose route and gateway have no policy does no guardrail work at all: the
policy lookup is one attribute read (or one dict lookup for a route version with its own
policy), and the policies are compiled once per version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from time import perf_counter_ns
from typing import Any

import orjson

from trimtab.alerts.signal import Signal
from trimtab.config import GuardrailsConfig, SessionGuardrailsConfig
from trimtab.errors import GatewayError
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.guard_texts import (
    Place,
    label,
    request_texts,
    response_texts,
    rewrite_request,
)
from trimtab.guardrails.pii import Redactor
from trimtab.guardrails.policy import CheckRun, Policies, Policy, Verdict
from trimtab.guardrails.stream import OutputStream
from trimtab.policy.estimate import estimate_input_tokens
from trimtab.rollouts.table import Version
from trimtab.state.base import SharedState
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.types import Wire

JSON = dict[str, Any]
_NOT_FINGERPRINTED = frozenset({"stream", "stream_options", "metadata", "user"})


def blocked_error(verdict: Verdict, status: int) -> GatewayError:
    """The refusal: names the check, never the matched text."""
    run = verdict.blocked
    assert run is not None
    if run.error is not None:
        return GatewayError(500, "guardrail_error", verdict.message())
    return GatewayError(status, "guardrail_blocked", verdict.message())


class Guard:
    """One request's guardrails: its policy, redactor and the runs so far; on the record
    when the exchange closes."""

    __slots__ = (
        "cost_key",
        "metrics",
        "policy",
        "redactor",
        "route",
        "runs",
        "source",
        "streams",
        "ttl_s",
    )

    def __init__(self, policy: Policy, source: str, route: str, metrics: GatewayMetrics) -> None:
        self.policy = policy
        self.source = source  # "route" (the version's own policy) or "gateway"
        self.route = route
        self.metrics = metrics
        self.redactor: Redactor = policy.new_redactor()
        self.runs: list[CheckRun] = []
        self.cost_key: str | None = None  # the session's spend counter, when capped
        self.ttl_s = 0.0
        self.streams: list[OutputStream] = []  # a streamed answer's, one per choice or block

    def close(self, ex: Exchange) -> None:
        """Put every run on the record and count it."""
        runs = [*self.runs, *(r for s in self.streams for r in s.runs())]
        if not runs:
            return
        blocked = next((r.check for r in runs if r.outcome in ("block", "error")), None)
        ex.annotate(
            guardrails={
                "mode": self.policy.mode,
                "policy": self.source,
                "checks": [r.as_dict() for r in runs],
                "fired": [r.check for r in runs if r.fired],
                "blocked": blocked,
                "us": round(sum(r.us for r in runs), 1),
            }
        )
        for r in runs:
            self.metrics.count_guardrail_check(r.check, r.outcome, self.route)


class Guarding:
    """The gateway's guardrails: policies by version, session ceilings, the checks."""

    def __init__(
        self,
        default: GuardrailsConfig | None,
        state: SharedState,
        metrics: GatewayMetrics,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        signals: Callable[[Signal], None] | None = None,  # non-blocking (alerts)
    ) -> None:
        self.policies = Policies(default)
        self._state = state
        self._metrics = metrics
        self._spawn = spawn
        self._signals = signals

    def attach(self, ex: Exchange, version: Version | None) -> Guard | None:
        """The request's guard, or None when no policy applies (then nothing else runs)."""
        if version is None:
            policy, source = self.policies.default, "gateway"
        else:
            own = version.bundle.guardrails
            try:
                policy = self.policies.for_version(version.digest, own)
            except ValueError as exc:  # stored under another schema: fail closed, clearly
                raise GatewayError(
                    500,
                    "guardrail_error",
                    f"route '{version.route}' {version.label}: its guardrails policy cannot "
                    f"be compiled on this gateway ({str(exc).splitlines()[0]}); apply a version "
                    "whose policy this gateway accepts",
                ) from None
            source = "route" if own is not None else "gateway"
        if policy is None:
            return None
        guard = Guard(policy, source, ex.record.route or "", self._metrics)
        ex.guard = guard
        return guard

    # -- before the provider call ----------------------------------------------------------

    async def before(self, ex: Exchange, guard: Guard, body: JSON, wire: Wire) -> JSON:
        """Session ceilings, then the input checks: the body to send (maybe redacted), or
        a GatewayError (429 for a ceiling, 400 for a blocked input)."""
        policy = guard.policy
        if policy.session is not None:
            await self._session(ex, guard, policy.session, body)
        if not policy.has_input:
            return body
        texts, slots = request_texts(body, wire)
        tokens = estimate_input_tokens(body) if policy.max_input_tokens is not None else 0
        verdict = policy.check_input(texts, tokens, guard.redactor)
        for run in verdict.runs:
            run.where = [label(slots[at]) if isinstance(at, int) else at for at in run.where]
        guard.runs.extend(verdict.runs)
        if verdict.blocked is not None:
            raise blocked_error(verdict, 400)
        if verdict.texts is not None:
            return rewrite_request(body, wire, slots, texts, verdict.texts)
        return body

    async def _session(
        self, ex: Exchange, guard: Guard, ceilings: SessionGuardrailsConfig, body: JSON
    ) -> None:
        rec = ex.record
        session = rec.session
        if session is None:
            return  # no session id, no session: the docs say how to send one
        t = perf_counter_ns()
        base = f"guardrails:{rec.tenant}:{session}"
        ttl = ceilings.ttl_s
        guard.ttl_s = ttl
        counter = self._state.counter_add
        breach: tuple[str, str] | None = None
        if ceilings.max_requests is not None:
            made = await counter(base + ":requests", 1, ttl)
            if made > ceilings.max_requests:
                breach = ("max_requests", f"{ceilings.max_requests} requests")
        if breach is None and ceilings.max_identical_calls is not None:
            same = await counter(base + ":same:" + fingerprint(body), 1, ttl)
            if same > ceilings.max_identical_calls:
                breach = (
                    "max_identical_calls",
                    f"{ceilings.max_identical_calls} identical requests",
                )
        if breach is None and ceilings.max_cost_usd is not None:
            guard.cost_key = base + ":cost"
            spent = await counter(guard.cost_key, 0, ttl)
            if spent >= ceilings.max_cost_usd:
                breach = ("max_cost_usd", f"USD {ceilings.max_cost_usd:g} (spent {spent:.4f})")
        name = breach[0] if breach else "session"
        run = CheckRun(f"session.{name}", "block")
        if breach is not None:
            run.outcome = "shadow" if guard.policy.mode == "shadow" else "block"
            run.detail = f"session '{session}' reached its {breach[0]} ceiling of {breach[1]}"
        run.us = (perf_counter_ns() - t) / 1000
        guard.runs.append(run)
        if breach is None:
            return
        if await counter(base + ":alerted", 1, ttl) == 1:
            self._signal(ex, guard, breach[0], session)
        if run.outcome == "block":
            raise GatewayError(
                429,
                "session_limit_exceeded",
                f"{run.detail} (guardrails, {guard.source} policy); to reset, send the next "
                "requests under a new session id (header x-trimtab-session or "
                f"metadata.session_id), or wait: a session's counters are forgotten {ttl:g}s "
                "after its last request",
            )

    def _signal(self, ex: Exchange, guard: Guard, ceiling: str, session: str) -> None:
        sink = self._signals
        if sink is None:
            return
        rec = ex.record
        labels = {"tenant": rec.tenant, "session": session, "ceiling": ceiling}
        if rec.route is not None:
            labels["route"] = rec.route
            labels["version"] = rec.version or ""
        signal = Signal(
            source="runaway_agent_loop",
            dedup_key=f"runaway_agent_loop/{rec.tenant}/{session}",
            severity="ticket",
            firing=True,
            summary=f"session '{session}' of tenant '{rec.tenant}' hit its {ceiling} ceiling",
            at=datetime.now(UTC),
            labels=labels,
            details={"ceiling": ceiling, "request_id": ex.id, "policy": guard.source},
        )
        sink(signal)

    def settle(self, ex: Exchange) -> None:
        """After the response: add the request's cost to its session's spend."""
        guard = ex.guard
        cost = ex.record.cost_usd
        if not isinstance(guard, Guard) or guard.cost_key is None or not cost:
            return
        self._spawn(_add(self._state, guard.cost_key, cost, guard.ttl_s))

    # -- after it ----------------------------------------------------------------------------

    async def after(
        self, guard: Guard, out: bytes, wire: Wire, again: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The output checks on a whole answer: the bytes to send, or a GatewayError (422)."""
        result = self._check_answer(guard, out, wire)
        if result is None:
            return out
        verdict, parsed, slots = result
        if verdict.retry:  # json_schema on_fail: retry_once
            out = await again()
            result = self._check_answer(guard, out, wire)
            if result is None:
                return out
            verdict, parsed, slots = result
            if verdict.retry:
                raise blocked_error(verdict, 422)
        if verdict.blocked is not None:
            raise blocked_error(verdict, 422)
        if verdict.texts is None:
            return out
        for (container, key, _), text in zip(slots, verdict.texts, strict=True):
            container[key] = text
        return orjson.dumps(parsed)

    def _check_answer(
        self, guard: Guard, out: bytes, wire: Wire
    ) -> tuple[Verdict, JSON, list[Place]] | None:
        parsed = orjson.loads(out)
        slots = response_texts(parsed, wire)
        if not slots:
            return None
        policy = guard.policy
        if len(slots) == 1 and slots[0][2] is None:
            container, key, _ = slots[0]
            verdict = policy.check_output(container[key], guard.redactor)
        else:  # several choices, text blocks or tool calls: each checked, one verdict
            verdict = Verdict(policy.mode)
            texts = []
            for container, key, label in slots:
                one = policy.check_output(container[key], guard.redactor, schema=label is None)
                if label is not None:  # a tool call's: the findings say where
                    for run in one.runs:
                        run.where = [label] * len(run.where)
                verdict.runs.extend(one.runs)
                verdict.blocked = verdict.blocked or one.blocked
                verdict.retry = verdict.retry or one.retry
                texts.append(one.texts[0] if one.texts else container[key])
            if any(r.outcome == "redact" for r in verdict.runs):
                verdict.texts = texts
        guard.runs.extend(verdict.runs)
        return verdict, parsed, slots


async def _add(state: SharedState, key: str, amount: float, ttl_s: float) -> None:
    await state.counter_add(key, amount, ttl_s)


def fingerprint(body: JSON) -> str:
    """What makes two requests the same call: everything but streaming and tags."""
    same = {k: v for k, v in body.items() if k not in _NOT_FINGERPRINTED}
    return hashlib.sha256(orjson.dumps(same, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
