"""gateway/guarding.py below the server: session ceilings over the shared state (and the
runaway-loop signal they raise), the texts of both wire formats, and the record."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import orjson
import pytest

from trimtab.alerts.signal import Signal
from trimtab.config import GuardrailsConfig
from trimtab.errors import GatewayError
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.guard_texts import request_texts, rewrite_request
from trimtab.gateway.guarded_relay import GuardedRelay
from trimtab.gateway.guarding import Guarding
from trimtab.gateway.relay import AnthropicRelay, OpenAIRelay
from trimtab.providers.base import SSEEvent, UpstreamError
from trimtab.registry.bundle import Bundle, Message
from trimtab.rollouts.table import Version
from trimtab.state.memory import MemoryState
from trimtab.telemetry.metrics import GatewayMetrics


def guarding(policy: dict[str, Any], signals: list[Signal]) -> tuple[Guarding, GatewayMetrics]:
    tasks: list[asyncio.Task[None]] = []

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.get_running_loop().create_task(work))

    metrics = GatewayMetrics()
    config = GuardrailsConfig.model_validate(policy)
    return Guarding(config, MemoryState(), metrics, spawn, signals.append), metrics


def exchange(session: str | None = "s-1") -> Exchange:
    ex = Exchange("openai", "chat")
    ex.record.tenant, ex.record.session = "acme", session
    return ex


BODY = {"model": "m", "messages": [{"role": "user", "content": "again"}]}


async def test_max_identical_calls_refuses_and_signals_a_runaway_loop_once() -> None:
    signals: list[Signal] = []
    g, metrics = guarding({"session": {"max_identical_calls": 2}}, signals)
    for _ in range(2):
        ex = exchange()
        guard = g.attach(ex, None)
        assert guard is not None
        assert await g.before(ex, guard, BODY, "openai") is BODY
    for _ in range(2):  # refused again and again, signalled once
        ex = exchange()
        guard = g.attach(ex, None)
        assert guard is not None
        with pytest.raises(GatewayError) as info:
            await g.before(ex, guard, BODY, "openai")
        assert info.value.status == 429 and info.value.code == "session_limit_exceeded"
        assert "max_identical_calls ceiling of 2 identical requests" in info.value.message
    assert len(signals) == 1
    signal = signals[0]
    assert (signal.source, signal.dedup_key, signal.firing) == (
        "runaway_agent_loop", "runaway_agent_loop/acme/s-1", True
    )  # fmt: skip
    assert signal.labels["ceiling"] == "max_identical_calls"
    ex.close()
    record = (ex.record.attributes or {})["guardrails"]
    assert record["blocked"] == "session.max_identical_calls"
    labels = {"check": "session.max_identical_calls", "outcome": "block", "route": ""}
    assert metrics.registry.get_sample_value("trimtab_guardrail_checks_total", labels) == 1.0


async def test_max_cost_counts_what_the_session_spent() -> None:
    g, _ = guarding({"session": {"max_cost_usd": 0.01}}, [])
    ex = exchange()
    guard = g.attach(ex, None)
    assert guard is not None
    await g.before(ex, guard, BODY, "openai")
    ex.record.cost_usd = 0.02
    g.settle(ex)  # adds the cost in the background
    await asyncio.sleep(0)
    later = exchange()
    guard = g.attach(later, None)
    assert guard is not None
    with pytest.raises(GatewayError, match=r"max_cost_usd ceiling of USD 0\.01"):
        await g.before(later, guard, BODY, "openai")
    without = exchange(session=None)  # no session id: nothing to count against
    guard = g.attach(without, None)
    assert guard is not None
    await g.before(without, guard, BODY, "openai")


def test_the_texts_of_both_wire_formats_and_their_rewrite() -> None:
    body: dict[str, Any] = {
        "system": [{"type": "text", "text": "sys a@b.example"}],
        "messages": [
            {"role": "user", "content": "plain"},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "part"}]},
        ],
    }
    texts, slots = request_texts(body, "anthropic")
    assert texts == ["sys a@b.example", "plain", "part"]
    out = rewrite_request(body, "anthropic", slots, texts, ["sys <EMAIL_1>", "plain", "PART"])
    assert out["system"] == [{"type": "text", "text": "sys <EMAIL_1>"}]
    assert out["messages"][1]["content"][1] == {"type": "text", "text": "PART"}
    assert body["system"][0]["text"] == "sys a@b.example"  # the client's objects untouched
    assert body["messages"][1]["content"][1]["text"] == "part"
    assert request_texts(body, "openai")[0] == ["plain", "part"]  # no `system` in OpenAI's


def test_a_guarded_relay_leaves_garbage_to_the_inner_relay_to_report() -> None:
    g, _ = guarding({"output": {"pii": {"action": "redact"}}}, [])
    ex = exchange()
    guard = g.attach(ex, None)
    assert guard is not None
    relay = GuardedRelay(OpenAIRelay("up", False), "openai", guard)
    with pytest.raises(UpstreamError, match="not valid JSON"):
        relay.feed(SSEEvent(None, b"{not json"))
    anthropic = GuardedRelay(AnthropicRelay("up"), "anthropic", guard)
    with pytest.raises(UpstreamError, match="not valid JSON"):
        anthropic.feed(SSEEvent("content_block_delta", b"{not json"))


def test_a_stored_policy_this_gateway_cannot_compile_fails_closed_with_a_clear_error() -> None:
    g, _ = guarding({}, [])
    bundle = Bundle("m", {}, (Message("user", "hi"),), {"input": {"pii": {"entities": ["x"]}}})
    version = Version("support", 3, bundle.digest, bundle)
    with pytest.raises(GatewayError) as info:
        g.attach(exchange(), version)
    assert info.value.status == 500 and info.value.code == "guardrail_error"
    assert "route 'support' v3: its guardrails policy cannot be compiled" in info.value.message


def test_tool_texts_of_both_wire_formats_and_their_rewrite() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t", "name": "f", "input": {"a": ["x", {"b": "y"}]}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "content": [{"type": "text", "text": "z"}]}],
            },
        ],
    }
    texts, slots = request_texts(body, "anthropic")
    assert texts == ["hi", "calling", "x", "y", "z"]
    out = rewrite_request(body, "anthropic", slots, texts, ["hi", "calling", "X", "y", "Z"])
    assert out["messages"][1]["content"][1]["input"] == {"a": ["X", {"b": "y"}]}
    assert out["messages"][2]["content"][0]["content"][0]["text"] == "Z"
    assert body["messages"][1]["content"][1]["input"]["a"][0] == "x"  # the client's untouched
    assert out["messages"][0] is body["messages"][0]  # what did not change is not copied
    calls = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}
    assert request_texts({"messages": [calls]}, "openai") == (
        ["{}"], [("messages", 0, "tool_calls", 0, "function", "arguments")]
    )  # fmt: skip


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> SSEEvent:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    data = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return SSEEvent(None, orjson.dumps({**data, "choices": [choice]}))


async def test_answers_tool_calls_are_redacted_whole_and_streamed_in_any_chunking() -> None:
    g, _ = guarding({"output": {"pii": {"action": "redact"}}}, [])
    arguments = '{"to": "jane.doe@example.com", "n": 1}'
    redacted = '{"to": "<EMAIL_1>", "n": 1}'
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [call]}}]}

    async def never() -> bytes:
        raise AssertionError("no retry")

    guard = g.attach(exchange(), None)
    assert guard is not None
    out = orjson.loads(await g.after(guard, orjson.dumps(answer), "openai", never))
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == redacted
    where = [f["message"] for r in guard.runs for f in r.as_dict().get("findings", [])]
    assert where == ["choices[0].message.tool_calls[0].function.arguments"]
    for size in (1, 3, 7, len(arguments)):
        guard = g.attach(exchange(), None)
        assert guard is not None
        inner = OpenAIRelay("up", False)
        relay = GuardedRelay(inner, "openai", guard)
        first = {
            "role": "assistant",
            "tool_calls": [{**call, "function": {"name": "f", "arguments": ""}}],
        }
        sent = relay.feed(openai_chunk(first))
        for at in range(0, len(arguments), size):
            piece = {
                "tool_calls": [{"index": 0, "function": {"arguments": arguments[at : at + size]}}]
            }
            sent += relay.feed(openai_chunk(piece))
        sent += relay.feed(openai_chunk({}, "tool_calls"))
        sent += relay.feed(SSEEvent(None, b"[DONE]"))
        assert b"jane.doe" not in sent
        streamed = "".join(
            c["function"].get("arguments", "")
            for line in sent.split(b"\n")
            if line.startswith(b"data: {")
            for ch in orjson.loads(line[6:])["choices"]
            for c in ch["delta"].get("tool_calls", ())
        )
        assert streamed == redacted, size
        kept = inner.response()["choices"][0]["message"]["tool_calls"][0]["function"]
        assert kept["arguments"] == redacted  # what the store keeps of the answer
    # Anthropic: a tool_use block's input streamed as partial JSON
    for size in (1, 5, len(arguments)):
        guard = g.attach(exchange(), None)
        assert guard is not None
        an_inner = AnthropicRelay("up")
        an = GuardedRelay(an_inner, "anthropic", guard)
        start = {"type": "message", "id": "m", "model": "m", "role": "assistant", "content": [],
                 "usage": {"input_tokens": 1, "output_tokens": 1}}  # fmt: skip
        events = [
            SSEEvent("message_start", orjson.dumps({"type": "message_start", "message": start})),
            SSEEvent(
                "content_block_start",
                orjson.dumps(
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
                    }
                ),
            ),
            *(
                SSEEvent(
                    "content_block_delta",
                    orjson.dumps(
                        {
                            "type": "content_block_delta",
                            "index": 0,
                            "delta": {
                                "type": "input_json_delta",
                                "partial_json": arguments[at : at + size],
                            },
                        }
                    ),
                )
                for at in range(0, len(arguments), size)
            ),
            SSEEvent("content_block_stop", b'{"type": "content_block_stop", "index": 0}'),
            SSEEvent(
                "message_delta",
                orjson.dumps(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "tool_use"},
                        "usage": {"output_tokens": 3},
                    }
                ),
            ),
            SSEEvent("message_stop", b'{"type": "message_stop"}'),
        ]
        sent = b"".join(an.feed(e) for e in events)
        assert b"jane.doe" not in sent
        partial = "".join(
            orjson.loads(line[6:])["delta"].get("partial_json", "")
            for line in sent.split(b"\n")
            if line.startswith(b"data: {") and b"content_block_delta" in line
        )
        assert partial == redacted, size
        assert an_inner.response()["content"][0]["input"] == {"to": "<EMAIL_1>", "n": 1}
