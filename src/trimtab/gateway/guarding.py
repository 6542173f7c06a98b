"""Guardrails on the data plane (docs/guardrails.md): the policy of the request's route
version (or the gateway's default), session ceilings in the shared state, input checks
before the provider call, output checks on the answer, streamed or not, and every
outcome on the record and in /metrics.

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
from trimtab.gateway.relay import Relay
from trimtab.guardrails.pii import Redactor
from trimtab.guardrails.policy import CheckRun, Policies, Policy, Verdict
from trimtab.guardrails.stream import GuardrailBlocked, OutputStream
from trimtab.policy.estimate import estimate_input_tokens
from trimtab.providers.base import SSEEvent
from trimtab.rollouts.table import Version
from trimtab.state.base import SharedState
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.types import Wire

JSON = dict[str, Any]
_Slot = tuple[str | int, ...]  # the path of a text in a body (below)
# where an answer's text is: the object holding it, its key, and where it is when it is a
# tool call's (None for the answer's own text)
_Place = tuple[Any, Any, str | None]
_Key = int | tuple[int, int]
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
            run.where = [_label(slots[at]) if isinstance(at, int) else at for at in run.where]
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
    ) -> tuple[Verdict, JSON, list[_Place]] | None:
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


# -- the texts of a request and of an answer --------------------------------------------------
#
# A slot is the path of one text from the body's root: ("messages", 2, "content"),
# ("system", 0, "text"), ("messages", 1, "tool_calls", 0, "function", "arguments"). Tool-call
# arguments and tool inputs and results are found in the same pass as the message texts:
# a body without tool calls costs what it did.


def _parts(content: Any, path: _Slot, texts: list[str], slots: list[_Slot]) -> None:
    if isinstance(content, str):
        texts.append(content)
        slots.append(path)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
                    slots.append((*path, j, "text"))
            elif kind == "tool_use":  # Anthropic: the call's input, a JSON object
                _leaves(part.get("input"), (*path, j, "input"), texts, slots)
            elif kind == "tool_result":  # its content: a string or text blocks
                _parts(part.get("content"), (*path, j, "content"), texts, slots)


def _leaves(value: Any, path: _Slot, texts: list[str], slots: list[_Slot]) -> None:
    """Every string in a JSON value, with its path."""
    if isinstance(value, str):
        texts.append(value)
        slots.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _leaves(item, (*path, key), texts, slots)
    elif isinstance(value, list):
        for k, item in enumerate(value):
            _leaves(item, (*path, k), texts, slots)


def _tool_calls(calls: Any, path: _Slot, texts: list[str], slots: list[_Slot]) -> None:
    """OpenAI: each tool call's `function.arguments` (a JSON text, scanned as text)."""
    if not isinstance(calls, list):
        return
    for k, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            texts.append(function["arguments"])
            slots.append((*path, k, "function", "arguments"))


def request_texts(body: JSON, wire: Wire) -> tuple[list[str], list[_Slot]]:
    """Every text of the prompt in order: the system prompt, message contents and text
    parts, tool-call arguments (OpenAI), tool inputs and tool results (Anthropic)."""
    texts: list[str] = []
    slots: list[_Slot] = []
    if wire == "anthropic" and "system" in body:
        _parts(body["system"], ("system",), texts, slots)
    messages = body.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if isinstance(message, dict):
                _parts(message.get("content"), ("messages", i, "content"), texts, slots)
                if "tool_calls" in message:
                    _tool_calls(message["tool_calls"], ("messages", i, "tool_calls"), texts, slots)
    return texts, slots


def _label(slot: _Slot) -> int | str:
    """Where a finding is: a message's index for its text, "system", or the path."""
    if slot[0] == "system":
        return "system"
    if len(slot) == 3 or (len(slot) == 5 and slot[4] == "text" and slot[2] == "content"):
        return int(slot[1])
    return path_label(slot)


def path_label(slot: _Slot) -> str:
    """("messages", 1, "tool_calls", 0, "function", "arguments") ->
    "messages[1].tool_calls[0].function.arguments"."""
    out = ""
    for step in slot:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def rewrite_request(
    body: JSON, wire: Wire, slots: list[_Slot], before: list[str], after: list[str]
) -> JSON:
    """A copy of the body with the changed texts replaced (the client's objects untouched:
    each container on the way to a changed text is copied once)."""
    out = dict(body)
    copies: dict[_Slot, Any] = {(): out}
    for slot, old, new in zip(slots, before, after, strict=True):
        if old == new:
            continue
        node: Any = out
        for depth in range(1, len(slot)):
            copy = copies.get(slot[:depth])
            if copy is None:
                child = node[slot[depth - 1]]
                copy = dict(child) if isinstance(child, dict) else list(child)
                node[slot[depth - 1]] = copy
                copies[slot[:depth]] = copy
            node = copy
        node[slot[-1]] = new
    return out


def response_texts(parsed: JSON, wire: Wire) -> list[_Place]:
    """Where the answer's texts are, and its tool calls' arguments (OpenAI) or inputs'
    strings (Anthropic)."""
    found: list[_Place] = []
    if wire == "openai":
        for c, choice in enumerate(parsed.get("choices") or ()):
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            if isinstance(message.get("content"), str):
                found.append((message, "content", None))
            if message.get("tool_calls"):
                texts: list[str] = []
                slots: list[_Slot] = []
                path = ("choices", c, "message", "tool_calls")
                _tool_calls(message["tool_calls"], path, texts, slots)
                found.extend(_place(parsed, slot) for slot in slots)
    else:
        for b, block in enumerate(parsed.get("content") or ()):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                found.append((block, "text", None))
            elif kind == "tool_use":
                texts, slots = [], []
                _leaves(block.get("input"), ("content", b, "input"), texts, slots)
                found.extend(_place(parsed, slot) for slot in slots)
    return found


def _place(root: Any, slot: _Slot) -> _Place:
    node = root
    for step in slot[:-1]:
        node = node[step]
    return node, slot[-1], path_label(slot)


# -- streams ----------------------------------------------------------------------------------


class GuardedRelay(Relay):
    """A relay whose provider events have their text deltas checked (and rewritten) before
    the inner relay translates and forwards them; held text is released before the event
    that ends its choice or block. A block raises GatewayError: before the first token the
    client gets an error response, after it the stream's error event."""

    def __init__(self, inner: Relay, provider: Wire, guard: Guard) -> None:
        super().__init__(inner.provider, _NoAccumulator())
        self._inner = inner
        self._provider_wire = provider
        self._guard = guard
        # a choice's or block's text: its index; an OpenAI tool call's: (choice, call)
        self._streams: dict[_Key, OutputStream] = {}
        self._json_blocks: set[int] = set()  # Anthropic blocks streaming a tool's input
        self._last: JSON = {}  # the last OpenAI chunk, to shape a flushing one like it

    def _stream(self, key: _Key, label: str | None = None) -> OutputStream:
        s = self._streams.get(key)
        if s is None:
            policy, redactor = self._guard.policy, self._guard.redactor
            s = OutputStream(policy, redactor, label, schema=label is None)
            self._streams[key] = s
            self._guard.streams.append(s)
        return s

    def feed(self, event: SSEEvent) -> bytes:
        try:
            if self._provider_wire == "openai":
                events = self._openai(event)
            else:
                events = self._anthropic(event)
        except GuardrailBlocked as blocked:
            self.done = True
            raise blocked_error(blocked.verdict, 422) from None
        out = b"".join(self._inner.feed(e) for e in events)
        self.done, self.token_seen = self._inner.done, self._inner.token_seen
        return out

    def _openai(self, event: SSEEvent) -> list[SSEEvent]:
        if event.data == b"[DONE]":
            return [*self._flush_openai(), event]
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return [event]  # the inner relay reports the provider's garbage
        if not isinstance(chunk, dict) or not chunk.get("choices"):
            if isinstance(chunk, dict) and chunk.get("usage"):
                return [*self._flush_openai(), event]  # the usage chunk follows the text
            return [event]
        self._last = chunk
        changed = False
        for choice in chunk["choices"]:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            delta = choice.get("delta")
            s = self._stream(index)
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(delta, dict) and delta.get("tool_calls"):
                changed = self._openai_tool_deltas(index, delta["tool_calls"]) or changed
            if isinstance(text, str) and isinstance(delta, dict):
                sent = s.feed(text)
                if choice.get("finish_reason"):
                    sent += s.finish()
                    self._streams.pop(index, None)
                if sent != text:
                    delta["content"] = sent
                    changed = True
            elif choice.get("finish_reason"):
                rest = s.finish()
                self._streams.pop(index, None)
                if rest:
                    kept = delta if isinstance(delta, dict) else {}
                    choice["delta"] = {**kept, "content": rest}
                    changed = True
            if choice.get("finish_reason") and self._tools_open(index):
                calls = self._finish_tools(index)
                if calls:
                    delta = choice.get("delta")
                    kept = delta if isinstance(delta, dict) else {}
                    choice["delta"] = {**kept, "tool_calls": [*kept.get("tool_calls", ()), *calls]}
                    changed = True
        if not changed:
            return [event]
        return [SSEEvent(event.event, orjson.dumps(chunk))]

    def _openai_tool_deltas(self, index: int, calls: Any) -> bool:
        """Each tool call's arguments delta through its own stream; True if one changed."""
        changed = False
        for k, call in enumerate(calls if isinstance(calls, list) else ()):
            function = call.get("function") if isinstance(call, dict) else None
            piece = function.get("arguments") if isinstance(function, dict) else None
            if not isinstance(piece, str) or not isinstance(function, dict):
                continue
            at = call.get("index", k)
            at = at if isinstance(at, int) else k
            label = f"choices[{index}].message.tool_calls[{at}].function.arguments"
            sent = self._stream((index, at), label).feed(piece)
            if sent != piece:
                function["arguments"] = sent
                changed = True
        return changed

    def _tools_open(self, index: int) -> bool:
        return any(isinstance(key, tuple) and key[0] == index for key in self._streams)

    def _finish_tools(self, index: int) -> list[JSON]:
        """The held arguments of a choice's tool calls, as tool-call deltas."""
        calls: list[JSON] = []
        for key in [k for k in self._streams if isinstance(k, tuple) and k[0] == index]:
            rest = self._streams.pop(key).finish()
            if rest:
                calls.append({"index": key[1], "function": {"arguments": rest}})
        return calls

    def _flush_openai(self) -> list[SSEEvent]:
        out = []
        for index in sorted({k[0] if isinstance(k, tuple) else k for k in self._streams}):
            delta: JSON = {}
            s = self._streams.pop(index, None)
            rest = s.finish() if s is not None else ""
            if rest:
                delta["content"] = rest
            calls = self._finish_tools(index)
            if calls:
                delta["tool_calls"] = calls
            if delta:
                chunk = {
                    "id": self._last.get("id"),
                    "object": "chat.completion.chunk",
                    "created": self._last.get("created", 0),
                    "model": self._last.get("model"),
                    "choices": [{"index": index, "delta": delta, "finish_reason": None}],
                }
                out.append(SSEEvent(None, orjson.dumps(chunk)))
        return out

    def _anthropic(self, event: SSEEvent) -> list[SSEEvent]:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return [event]
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                return [event]
            kind, field = delta.get("type"), "text"
            if kind == "input_json_delta":  # a tool's input, streamed as JSON text
                field = "partial_json"
            elif kind != "text_delta":
                return [event]
            text = delta.get(field)
            if isinstance(text, str):
                index = int(data.get("index") or 0)
                label = None
                if field == "partial_json":
                    self._json_blocks.add(index)
                    label = f"content[{index}].input"
                sent = self._stream(index, label).feed(text)
                if sent != text:
                    delta[field] = sent
                    return [SSEEvent(event.event, orjson.dumps(data))]
            return [event]
        if kind == "content_block_stop":
            index = int(data.get("index") or 0)
            s = self._streams.pop(index, None)
            rest = s.finish() if s is not None else ""
            if rest:
                return [self._anthropic_flush(index, rest), event]
            return [event]
        if kind in ("message_delta", "message_stop"):
            out = []
            for key, s in list(self._streams.items()):
                rest = s.finish()
                del self._streams[key]
                if rest and isinstance(key, int):
                    out.append(self._anthropic_flush(key, rest))
            return [*out, event]
        return [event]

    def _anthropic_flush(self, index: int, rest: str) -> SSEEvent:
        """The held text of a block, as the delta its block streams."""
        if index in self._json_blocks:
            delta = {"type": "input_json_delta", "partial_json": rest}
        else:
            delta = {"type": "text_delta", "text": rest}
        flush = {"type": "content_block_delta", "index": index, "delta": delta}
        return SSEEvent("content_block_delta", orjson.dumps(flush))

    def usage(self) -> tuple[int | None, int | None]:
        return self._inner.usage()

    def finish_reasons(self) -> list[str] | None:
        return self._inner.finish_reasons()

    def response(self) -> JSON:
        return self._inner.response()

    def response_meta(self) -> tuple[str | None, str | None]:
        return self._inner.response_meta()


class _NoAccumulator:
    """The guarded relay keeps nothing itself: its inner relay accumulates."""

    def add(self, item: JSON) -> None:
        return None

    response_id = None
    response_model = None
    input_tokens = None
    output_tokens = None

    @property
    def finish_reasons(self) -> list[str]:
        return []

    def result(self) -> JSON:
        return {}
