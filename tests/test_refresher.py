"""The background loop shared by the refreshers, the rollout controller and the state probe."""

from __future__ import annotations

import asyncio
import logging

import pytest

from trimtab.refresher import Periodic


async def test_a_failing_step_is_logged_and_the_loop_goes_on_until_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    third = asyncio.Event()

    async def step() -> None:
        calls.append(len(calls))
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("first step fails")

    loop = Periodic("trimtab-test-loop", step, 0.0, failed="test step failed", wait_first=False)
    with caplog.at_level(logging.ERROR, logger="trimtab.refresher"):
        loop.start()
        loop.start()  # a second start does not start a second task
        await asyncio.wait_for(third.wait(), 10)
        await loop.stop()
    assert [t for t in asyncio.all_tasks() if t.get_name() == "trimtab-test-loop"] == []
    stopped_at = len(calls)
    await asyncio.sleep(0.01)
    assert len(calls) == stopped_at  # nothing runs after stop()
    failures = [r for r in caplog.records if r.getMessage() == "test step failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None
    await loop.stop()  # stopping twice is harmless


async def test_wait_first_runs_no_step_before_the_first_interval() -> None:
    calls: list[None] = []

    async def step() -> None:
        calls.append(None)

    loop = Periodic("trimtab-test-loop", step, 3600.0, failed="unused")
    loop.start()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await loop.stop()
    assert calls == []
