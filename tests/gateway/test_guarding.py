"""gateway/guarding.py below the server: session ceilings over the shared state (and the
runaway-loop signal they raise), the texts of both wire formats, and the record."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from trimtab.alerts.signal import Signal
from trimtab.config import GuardrailsConfig
from trimtab.errors import GatewayError
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.guarding import GuardedRelay, Guarding, request_texts, rewrite_request
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
