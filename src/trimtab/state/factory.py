"""Pick the shared-state backend named by the configuration."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from trimtab.config import StateConfig
from trimtab.state.base import SharedState
from trimtab.state.memory import MemoryState
from trimtab.state.urls import redact_url

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def build_state(config: StateConfig, registry: CollectorRegistry | None = None) -> SharedState:
    """MemoryState without a URL; for a Redis URL, RedisState behind a ResilientState (which
    serves from process-local state while Redis is away, metrics in `registry`);
    ValueError otherwise."""
    if config.url is None:
        return MemoryState()
    if config.url.lower().startswith(REDIS_SCHEMES):
        # the Redis client is loaded only for a gateway that shares its state (~7.5 MiB)
        from trimtab.state.redis import RedisState
        from trimtab.state.resilient import ResilientState

        return ResilientState(
            RedisState(config.url),
            share=config.processes,
            probe_interval_s=config.probe_interval_s,
            registry=registry,
        )
    raise ValueError(
        f"state.url '{redact_url(config.url)}' is not supported: use redis://, rediss:// or "
        "unix:// (or leave it out to keep state in this process)"
    )
