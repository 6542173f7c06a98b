"""Circuit breakers per deployment: take a failing upstream out of rotation, probe it back.

Closed: requests flow and outcomes are counted over `window_s`. Open: when at least
`min_requests` ended in the window and `failure_ratio` of them failed; nothing is sent for
`cooldown_s`. Half-open: after the cooldown one probe request is let through (claimed
atomically, so one process probes); its success closes the breaker, its failure reopens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from trimtab.config import BreakerConfig
from trimtab.state.base import SharedState
from trimtab.telemetry.metrics import GatewayMetrics

BreakerState = Literal["closed", "open", "half_open"]


def should_trip(total: int, failures: int, config: BreakerConfig) -> bool:
    """The opening rule, pure."""
    return total >= config.min_requests and failures / total >= config.failure_ratio


class Breakers:
    """Breaker decisions over shared state (one breaker per deployment key)."""

    def __init__(
        self,
        state: SharedState,
        metrics: GatewayMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._metrics = metrics
        self._clock = clock
        self.known: dict[str, BreakerConfig] = {}

    def watch(self, key: str, config: BreakerConfig) -> None:
        """Make a deployment's breaker visible in the API and in /metrics from the start."""
        self.known.setdefault(key, config)
        self._metrics.breaker_open.labels(key).set(0)

    async def allows(self, key: str, config: BreakerConfig) -> bool:
        """May a request go to this deployment now?"""
        until = await self._state.breaker_open_until(key)
        if until == 0:
            return True
        if self._clock() < until:
            return False
        return await self._state.breaker_claim_probe(key, config.cooldown_s)

    async def record(self, key: str, config: BreakerConfig, ok: bool) -> None:
        """Count an outcome; open, reopen or close the breaker as the rule says."""
        until = await self._state.breaker_open_until(key)
        now = self._clock()
        if until:
            if now < until:
                return  # an answer to a request sent before the breaker opened
            if ok:
                await self._state.breaker_reset(key)
                self._metrics.breaker_open.labels(key).set(0)
            else:
                await self._trip(key, now + config.cooldown_s)
            return
        counts = await self._state.breaker_record(key, ok, config.window_s)
        if not ok and should_trip(counts.total, counts.failures, config):
            await self._trip(key, now + config.cooldown_s)

    async def _trip(self, key: str, until: float) -> None:
        await self._state.breaker_trip(key, until)
        self._metrics.breaker_open.labels(key).set(1)
        self._metrics.breaker_trips.labels(key).inc()

    async def status(self, key: str) -> dict[str, Any]:
        config = self.known[key]
        until = await self._state.breaker_open_until(key)
        now = self._clock()
        state: BreakerState = "closed" if not until else ("open" if now < until else "half_open")
        return {
            "deployment": key,
            "state": state,
            "open_until": until or None,
            "failure_ratio": config.failure_ratio,
            "min_requests": config.min_requests,
            "window_s": config.window_s,
            "cooldown_s": config.cooldown_s,
        }
