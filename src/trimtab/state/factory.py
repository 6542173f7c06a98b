"""Pick the shared-state backend named by the configuration."""

from __future__ import annotations

from trimtab.config import StateConfig
from trimtab.state.base import SharedState
from trimtab.state.memory import MemoryState
from trimtab.state.redis import RedisState, redact_url

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def build_state(config: StateConfig) -> SharedState:
    """MemoryState without a URL, RedisState for a Redis URL; ValueError otherwise."""
    if config.url is None:
        return MemoryState()
    if config.url.lower().startswith(REDIS_SCHEMES):
        return RedisState(config.url)
    raise ValueError(
        f"state.url '{redact_url(config.url)}' is not supported: use redis://, rediss:// or "
        "unix:// (or leave it out to keep state in this process)"
    )
