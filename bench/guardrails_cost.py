"""The hot-path cost of guardrails, in process (docs/guardrails.md): the added time of the
default input+output policy on a 2 KB prompt and a 1 KB answer, p50 and p99, beside the
same request with no policy; and the streamed answer's added time to its first token.

    .venv/bin/python bench/guardrails_cost.py [--n 5000] [--payload pii|ticket]

`--payload ticket` times the server benchmark's payload instead (bench/run.py
--prompt-bytes 2048, bench/mock_upstream.py --reply-bytes 1024): prose with order numbers,
amounts, times and a version, and no personal data, which the policy scans and leaves.

The server benchmark (bench/run.py) measures the same through sockets; this isolates the
guardrail work: the texts taken out of the body, every detector, the rewrite, the record.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
from collections.abc import Coroutine
from pathlib import Path
from time import perf_counter_ns
from types import ModuleType
from typing import Any

import orjson

from trimtab.config import GuardrailsConfig
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.guarding import Guarding
from trimtab.guardrails.stream import OutputStream
from trimtab.state.memory import MemoryState
from trimtab.telemetry.metrics import GatewayMetrics

DEFAULT_POLICY = {
    "input": {"pii": {"action": "redact"}, "injection": {"action": "block"}},
    "output": {"pii": {"action": "redact"}},
}
_SENTENCE = (
    "Our customer says the parcel arrived damaged and asks whether the refund can go to "
    "the same card as before; she attached two photos and the delivery note. "
)


def prompt() -> dict[str, Any]:
    """A 2 KB chat request with one email and one phone number in it."""
    text = _SENTENCE * 14
    text = text[:1880] + " Reach her at jane.doe@example.com or (415) 555-2671 today."
    system = "You are a helpful support assistant. Answer briefly and politely."
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    return {"model": "gpt-mock", "messages": messages}


def answer() -> bytes:
    """A 1 KB OpenAI completion with one email in it."""
    text = (_SENTENCE * 6)[:900] + " Write to returns@example.com."
    return orjson.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "model": "gpt-mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        }
    )


def _script(name: str) -> ModuleType:
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def use_ticket() -> None:
    """The server benchmark's 2 KB ticket and 1 KB answer in place of prompt() and answer()."""
    global prompt, answer
    text = _script("run").prompt_text(2048)
    mock = _script("mock_upstream")
    body = {"model": "gpt-mock", "messages": [{"role": "user", "content": text}]}
    out = mock.completion_body("gpt-mock", 1, mock.Reply(1024))

    def ticket() -> dict[str, Any]:
        return body

    def ticket_answer() -> bytes:
        return bytes(out)

    prompt, answer = ticket, ticket_answer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(policy: dict[str, Any] | None, n: int) -> list[float]:
    """µs per request of the guardrail steps the gateway runs (attach, before, after, close)."""

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        work.close()

    config = GuardrailsConfig.model_validate(policy) if policy is not None else None
    guarding = Guarding(config, MemoryState(), GatewayMetrics(), spawn)
    body, out = prompt(), answer()

    async def again() -> bytes:
        return out

    times = []
    for _ in range(n):
        ex = Exchange("openai", "chat")
        t = perf_counter_ns()
        guard = guarding.attach(ex, None)
        if guard is not None:
            await guarding.before(ex, guard, body, "openai")
            await guarding.after(guard, out, "openai", again)
            guard.close(ex)
        times.append((perf_counter_ns() - t) / 1000)
    return times


def first_token(n: int) -> list[float]:
    """µs the streamed output checks add before the first word can go out."""
    config = GuardrailsConfig.model_validate(DEFAULT_POLICY)
    from trimtab.guardrails.policy import Policy

    policy = Policy(config)
    times = []
    for _ in range(n):
        s = OutputStream(policy, policy.new_redactor())
        t = perf_counter_ns()
        s.feed("Sure")
        s.feed(",")  # the first word is released once the next character shows it ended
        times.append((perf_counter_ns() - t) / 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--payload", choices=("pii", "ticket"), default="pii")
    args = parser.parse_args()
    n = args.n
    if args.payload == "ticket":
        use_ticket()
    asyncio.run(measure(DEFAULT_POLICY, 200))  # warm up
    off = asyncio.run(measure(None, n))
    on = asyncio.run(measure(DEFAULT_POLICY, n))
    ttft = first_token(n)
    load = os.getloadavg()[0]
    print(
        f"prompt {len(orjson.dumps(prompt()))} B, answer {len(answer())} B, n={n}, load {load:.1f}"
    )
    print(f"{'':<28} {'p50 µs':>8} {'p99 µs':>8}")
    for name, values in (("no policy", off), ("default policy", on)):
        print(f"{name:<28} {statistics.median(values):>8.1f} {percentile(values, 0.99):>8.1f}")
    added50 = statistics.median(on) - statistics.median(off)
    added99 = percentile(on, 0.99) - percentile(off, 0.99)
    print(f"{'added':<28} {added50:>8.1f} {added99:>8.1f}")
    first50, first99 = statistics.median(ttft), percentile(ttft, 0.99)
    print(f"{'stream: first token waits':<28} {first50:>8.1f} {first99:>8.1f}")


if __name__ == "__main__":
    main()
