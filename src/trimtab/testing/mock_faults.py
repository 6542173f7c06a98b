"""The fault directives of the mock upstream: what a model name asks it to do.

``fail-<status>``, ``flaky-<k>``, ``hang``, ``reset``, ``bad-json``, ``cut-stream``,
``slow-<ms>``, ``slow-first-<ms>``, ``drip-<ms>``, ``echo-key`` and ``echo-key-stream`` are
described in :mod:`trimtab.testing.mock_upstream`, which carries them out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

BAD_JSON = b'{"id": "x", "choices": ['

_FAIL_RE = re.compile(r"fail-([45]\d\d)")
_FLAKY_RE = re.compile(r"flaky-(\d+)")
_SLOW_FIRST_RE = re.compile(r"slow-first-(\d+)")
_SLOW_RE = re.compile(r"slow-(\d+)")
_DRIP_RE = re.compile(r"drip-(\d+)")


@dataclass(frozen=True)
class Plan:
    """What a model name asks the server to do."""

    kind: Literal[
        "reply",
        "fail",
        "flaky",
        "hang",
        "reset",
        "bad-json",
        "cut-stream",
        "echo-key",
        "echo-key-stream",
    ] = "reply"
    status: int = 200
    flaky: int = 0
    delay: float = 0.0
    first_delay: float = 0.0
    drip: float = 0.0


_SIMPLE_PLANS: dict[str, Plan] = {
    "hang": Plan(kind="hang"),
    "reset": Plan(kind="reset"),
    "bad-json": Plan(kind="bad-json"),
    "cut-stream": Plan(kind="cut-stream"),
    "echo-key": Plan(kind="echo-key"),
    "echo-key-stream": Plan(kind="echo-key-stream"),
}


def parse_directive(model: str) -> Plan:
    """Map a model name onto a fault-injection plan."""
    if model in _SIMPLE_PLANS:
        return _SIMPLE_PLANS[model]
    if m := _FAIL_RE.fullmatch(model):
        return Plan(kind="fail", status=int(m.group(1)))
    if m := _FLAKY_RE.fullmatch(model):
        return Plan(kind="flaky", flaky=int(m.group(1)))
    if m := _SLOW_FIRST_RE.fullmatch(model):
        return Plan(first_delay=int(m.group(1)) / 1000)
    if m := _SLOW_RE.fullmatch(model):
        return Plan(delay=int(m.group(1)) / 1000)
    if m := _DRIP_RE.fullmatch(model):
        return Plan(drip=int(m.group(1)) / 1000)
    return Plan()


async def abort(request: web.Request) -> None:
    """Drop the TCP connection without a (further) response."""
    transport = request.transport
    if transport is not None:
        # Let already-written bytes reach the socket before the hard close.
        for _ in range(100):
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.01)
        transport.abort()
    # The handler is cancelled once aiohttp notices the lost connection.
    await asyncio.sleep(5)


async def hang(request: web.Request, stopping: Callable[[], bool]) -> None:
    """Never answer: wait until the client disconnects or the server is ``stopping``."""
    while not stopping():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)
    await abort(request)  # server stopping: still never send a response
