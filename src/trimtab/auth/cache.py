"""Keep the gateway's in-memory keys in step with the store, without the request path waiting.

A background task reloads the `api_keys` table every `auth.refresh_s` (the query runs in a
thread) and hands the snapshot to the `KeyRing`. When the store does not answer, the last
snapshot keeps serving for `auth.stale_ttl_s`, and the outage shows in /readyz and /metrics.
"""

from __future__ import annotations

import asyncio
import math
import time

from prometheus_client import CollectorRegistry, Gauge

from trimtab.auth.keyring import KeyRing
from trimtab.auth.store import KeyStore
from trimtab.refresher import Refresher


class KeyCache(Refresher):
    """The refresher of a `KeyRing`'s store keys, and its health."""

    def __init__(self, store: KeyStore, ring: KeyRing, *, refresh_s: float) -> None:
        super().__init__("key store", refresh_s)
        self._store = store
        self._ring = ring

    async def reload(self) -> None:
        taken_at = time.monotonic()
        snapshot = await asyncio.to_thread(self._store.snapshot)
        self._ring.install(snapshot, taken_at)

    def problem(self) -> str | None:
        """A readiness problem, or None when the keys are current."""
        age = self.age_s()
        outage = self.outage()
        if outage is not None:
            if age > self._ring.stale_ttl_s:
                serving = "keys from the store are refused until it answers"
            elif math.isinf(age):
                serving = "no keys from the store were ever loaded"
            else:
                serving = (
                    f"keys from the store are served from a snapshot {age:.0f}s old "
                    f"(for up to auth.stale_ttl_s = {self._ring.stale_ttl_s:g}s)"
                )
            return f"{outage}; {serving}"
        if self.stalled():
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
