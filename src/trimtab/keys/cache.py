"""Keep the gateway's in-memory keys in step with the store, without the request path waiting.

A background task reloads the `api_keys` table every `auth.refresh_s` (the query runs in a
thread) and hands the snapshot to the `KeyRing`. When the store does not answer, the last
snapshot keeps serving for `auth.stale_ttl_s`, and the outage shows in /readyz and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge
from starlette.concurrency import run_in_threadpool

from trimtab.gateway.auth import KeyRing
from trimtab.keys.store import KeyStore

log = logging.getLogger(__name__)


class KeyCache:
    """The refresher of a `KeyRing`'s store keys, and its health."""

    def __init__(self, store: KeyStore, ring: KeyRing, *, refresh_s: float) -> None:
        self._store = store
        self._ring = ring
        self._refresh_s = refresh_s
        self._task: asyncio.Task[None] | None = None
        self._last_ok: float | None = None  # monotonic start of the last good refresh
        self._down_since: datetime | None = None
        self._last_error = ""
        self.up = False

    async def start(self) -> None:
        """Load the keys once, then keep refreshing in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="trimtab-key-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> bool:
        """One reload; True when the store answered."""
        taken_at = time.monotonic()
        try:
            snapshot = await run_in_threadpool(self._store.snapshot)
        except Exception as exc:
            self._failed(exc)
            return False
        self._ring.install(snapshot, taken_at)
        self._last_ok = taken_at
        if self._down_since is not None:
            log.warning("key store reachable again (unreachable since %s)", self._down_since)
        self._down_since = None
        self.up = True
        return True

    def _failed(self, exc: Exception) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
            log.warning(
                "key store unreachable (%s); keys from the store are served from the last "
                "snapshot for up to %gs",
                self._last_error,
                self._ring.stale_ttl_s,
            )
        self.up = False

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # never let the refresher die
                log.exception("key cache refresh failed")

    def age_s(self) -> float:
        """Seconds since the snapshot in use was taken (inf before the first one)."""
        if self._last_ok is None:
            return math.inf
        return time.monotonic() - self._last_ok

    def problem(self) -> str | None:
        """A readiness problem, or None when the keys are current."""
        age = self.age_s()
        if self._down_since is not None:
            if age > self._ring.stale_ttl_s:
                serving = "keys from the store are refused until it answers"
            elif math.isinf(age):
                serving = "no keys from the store were ever loaded"
            else:
                serving = (
                    f"keys from the store are served from a snapshot {age:.0f}s old "
                    f"(for up to auth.stale_ttl_s = {self._ring.stale_ttl_s:g}s)"
                )
            return (
                f"key store unreachable since {self._down_since.isoformat(timespec='seconds')}"
                f" ({self._last_error}); {serving}"
            )
        if age > max(10 * self._refresh_s, 10.0):
            return f"key cache not refreshed for {age:.0f}s (auth.refresh_s = {self._refresh_s:g})"
        return None

    def register(self, registry: CollectorRegistry) -> None:
        """Export `trimtab_key_store_up` and `trimtab_key_cache_age_seconds`."""
        up = Gauge(
            "trimtab_key_store_up",
            "1 when the last refresh of the API keys from the store worked.",
            registry=registry,
        )
        up.set_function(lambda: 1.0 if self.up else 0.0)
        age = Gauge(
            "trimtab_key_cache_age_seconds",
            "Age of the API-key snapshot the gateway authenticates from.",
            registry=registry,
        )
        age.set_function(self.age_s)
