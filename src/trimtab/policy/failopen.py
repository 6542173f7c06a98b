"""Shared-state calls that fail open: a call that fails yields None, is logged and counted,
and the request goes ahead as if no limit or budget applied (docs/policy.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from trimtab.policy.metrics import PolicyMetrics

log = logging.getLogger("trimtab.policy")

T = TypeVar("T")


class FailOpen:
    """Runs the policy's state calls; counts each failure in `state_errors`."""

    def __init__(self, metrics: PolicyMetrics) -> None:
        self._metrics = metrics

    async def each(self, calls: Sequence[Awaitable[T]]) -> list[T | None]:
        """Run state calls concurrently; a failed call yields None (logged and counted)."""
        if len(calls) == 1:
            try:
                return [await calls[0]]
            except Exception as exc:
                self._failed(exc)
                return [None]
        results = await asyncio.gather(*calls, return_exceptions=True)
        out: list[T | None] = []
        for result in results:
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                self._failed(result)
                out.append(None)
            else:
                out.append(result)
        return out

    def _failed(self, exc: Exception) -> None:
        self._metrics.state_errors.inc()
        log.error("shared state call failed; letting the request through: %r", exc)
