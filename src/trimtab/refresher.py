"""Keeping an in-memory snapshot in step with the store, off the request path.

The gateway serves keys and routes from memory; a background task reloads them every
`refresh_s` (the query runs in a thread). When the store does not answer, the last
snapshot keeps serving and the outage is remembered for /readyz and /metrics.

`Periodic` is that background task on its own, also used by the rollout controller
and the shared-state probe: one step every interval, what a step raises is logged and
the loop goes on, `stop()` cancels it and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)


class Periodic:
    """Runs `step` every `interval_s` in a background task named `name` until stopped.

    With `wait_first` the first step comes one interval after `start()` (the caller has
    just done one), otherwise at once. An exception of a step is logged on `logger` with
    `failed` as the message; the next step still comes."""

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        interval_s: float,
        *,
        failed: str,
        logger: logging.Logger = log,
        wait_first: bool = True,
    ) -> None:
        self._name = name
        self._step = step
        self._interval_s = interval_s
        self._failed = failed
        self._log = logger
        self._wait_first = wait_first
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        if self._wait_first:
            await asyncio.sleep(self._interval_s)
        while True:
            try:
                await self._step()
            except Exception:  # never let the loop die
                self._log.exception(self._failed)
            await asyncio.sleep(self._interval_s)


class Refresher:
    """The reload loop and the store's health; subclasses define `reload()`."""

    def __init__(self, what: str, refresh_s: float) -> None:
        self._what = what  # "key store", "route store": for logs and readiness
        self._refresh_s = refresh_s
        self._lock = asyncio.Lock()
        self._loop = Periodic(
            "trimtab-" + what.replace(" ", "-"),
            self.refresh,
            refresh_s,
            failed=f"{what} refresh failed",
        )
        self._last_ok: float | None = None  # monotonic start of the last good reload
        self._down_since: datetime | None = None
        self._last_error = ""
        self.up = False

    async def reload(self) -> None:
        """Read the store and install a new snapshot; raise when the store fails."""
        raise NotImplementedError

    async def start(self) -> None:
        """Load once, then keep refreshing in the background."""
        await self.refresh()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def refresh(self) -> bool:
        """One reload; True when the store answered.

        Reloads run one at a time, so one that starts after a change committed always
        installs its snapshot after any that started before it."""
        async with self._lock:
            taken_at = time.monotonic()
            try:
                await self.reload()
            except Exception as exc:
                self._failed(exc)
                return False
            self._last_ok = taken_at
            if self._down_since is not None:
                log.warning(
                    "%s reachable again (unreachable since %s)", self._what, self._down_since
                )
            self._down_since = None
            self.up = True
            return True

    def _failed(self, exc: Exception) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
            log.warning(
                "%s unreachable (%s); serving the last snapshot", self._what, self._last_error
            )
        self.up = False

    def age_s(self) -> float:
        """Seconds since the snapshot in use was taken (inf before the first one)."""
        if self._last_ok is None:
            return math.inf
        return time.monotonic() - self._last_ok

    def outage(self) -> str | None:
        """ "<what> unreachable since … (error)" while the store is down."""
        if self._down_since is None:
            return None
        since = self._down_since.isoformat(timespec="seconds")
        return f"{self._what} unreachable since {since} ({self._last_error})"

    def stalled(self) -> bool:
        """No good reload for much longer than the refresh interval."""
        return self.age_s() > max(10 * self._refresh_s, 10.0)
