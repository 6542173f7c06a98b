"""build_state picks the backend from state.url."""

from __future__ import annotations

import pytest

from trimtab.config import StateConfig
from trimtab.state.factory import build_state
from trimtab.state.memory import MemoryState
from trimtab.state.redis import RedisState
from trimtab.state.resilient import ResilientState
from trimtab.state.urls import redact_url


async def test_no_url_keeps_state_in_this_process() -> None:
    assert isinstance(build_state(StateConfig()), MemoryState)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://cache.internal:6380/1", "unix:///tmp/r.sock"]
)
async def test_redis_urls_share_state_in_redis(url: str) -> None:
    state = build_state(StateConfig(url=url))
    # Redis behind the wrapper that serves locally while Redis is away
    assert isinstance(state, ResilientState)
    assert isinstance(state.primary, RedisState)
    await state.close()


def test_other_urls_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"memcached://cache:11211.*redis://"):
        build_state(StateConfig(url="memcached://cache:11211"))


def test_passwords_never_reach_the_message() -> None:
    with pytest.raises(ValueError) as info:
        build_state(StateConfig(url="postgres://app:hunter2@db/x"))
    assert "hunter2" not in str(info.value) and "app:***@db" in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("redis://user:pw@h/0", "redis://user:***@h/0"),
        ("redis://h:1/0", "redis://h:1/0"),
        ("unix:///s.sock?db=0&password=pw", "unix:///s.sock?db=0&password=***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
