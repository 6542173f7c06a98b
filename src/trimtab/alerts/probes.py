"""Conditions the server watches for itself and reports as signals, off the request path.

Breaker trips, telemetry spilling and the key store unreachable are read from what the
gateway already keeps (the breakers' shared state, the recorder's and key cache's
readiness problems) every `probe_interval_s`, never from the request path. While a
condition holds its signal is repeated each round with an expiry a few rounds ahead: an
alert of a process that died resolves by itself; a condition that clears sends one cleared
signal. A per-process condition's dedup key names the process (host and pid), a shared one
(a breaker: its state is shared) does not. A breaker's alert names the models its
deployment serves (labels `model`, `models`), so an incident's timeline finds the trip.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from trimtab.alerts.signal import Severity, Signal, Source
from trimtab.refresher import Periodic

log = logging.getLogger("trimtab.alerts")

Probe = Callable[[datetime], Awaitable[list[Signal]]]
EXPIRY_ROUNDS = 4


def node() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Watch:
    """Remembers what each key last said, so a clear is sent once, not every round."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._firing: dict[str, bool] = {}

    def signal(
        self,
        key: str,
        problem: str | None,
        at: datetime,
        *,
        source: Source,
        severity: Severity,
        labels: Mapping[str, str],
        details: Mapping[str, object] | None = None,
    ) -> list[Signal]:
        firing = problem is not None
        before = self._firing.get(key)
        self._firing[key] = firing
        if not firing and before is False:
            return []  # still clear: nothing to say
        return [
            Signal(
                source=source,
                dedup_key=key,
                severity=severity,
                firing=firing,
                summary=problem or f"{key} cleared",
                at=at,
                labels=labels,
                details=details or {},
                expires_at=(
                    at + timedelta(seconds=self._interval_s * EXPIRY_ROUNDS) if firing else None
                ),
            )
        ]


def problem_probe(
    watch: Watch,
    source: Source,
    severity: Severity,
    problem: Callable[[], str | None],
    *,
    where: str | None = None,
) -> Probe:
    """A readiness problem (a line, or None) of this process as a signal."""
    here = where or node()
    key = f"{source}/{here}"

    async def probe(at: datetime) -> list[Signal]:
        return watch.signal(
            key, problem(), at, source=source, severity=severity, labels={"node": here}
        )

    return probe


def breaker_labels(deployment: str, models: Sequence[str]) -> dict[str, str]:
    """A breaker alert's labels: the deployment, the models it serves (`models`, comma
    separated, sorted), and `model` when it serves one, as every other alert names it."""
    served = sorted(set(models))
    labels = {"deployment": deployment}
    if served:
        labels["models"] = ",".join(served)
    if len(served) == 1:
        labels["model"] = served[0]
    return labels


def breaker_probe(
    watch: Watch,
    keys: Callable[[], Iterable[str]],
    status: Callable[[str], Awaitable[Mapping[str, Any]]],
    severity: Severity = "ticket",
    models: Mapping[str, Sequence[str]] | None = None,
) -> Probe:
    """Each watched deployment's breaker: open (or half-open, probing) fires, labelled
    with the models the deployment serves (`models`: deployment key -> model names)."""
    served = models or {}

    async def probe(at: datetime) -> list[Signal]:
        out: list[Signal] = []
        for key in sorted(keys()):
            s = await status(key)
            state = str(s.get("state", "closed"))
            problem = (
                None
                if state == "closed"
                else f"breaker of {key} is {state.replace('_', '-')}: requests go elsewhere"
            )
            out += watch.signal(
                f"breaker/{key}",
                problem,
                at,
                source="breaker",
                severity=severity,
                labels=breaker_labels(key, served.get(key, ())),
                details={"state": state, "open_until": s.get("open_until")},
            )
        return out

    return probe


class Probes:
    """Runs every probe each interval and submits what they say."""

    def __init__(
        self,
        probes: list[Probe],
        submit: Callable[[Signal], None],
        interval_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._probes = probes
        self._submit = submit
        self._clock = clock
        self._loop = Periodic(
            "trimtab-alert-probes",
            self.round,
            interval_s,
            failed="an alert probe failed",
            wait_first=False,
        )

    async def round(self) -> int:
        n = 0
        at = self._clock()
        for probe in self._probes:
            try:
                signals = await probe(at)
            except Exception:  # one probe's failure (say Redis down) spares the others
                log.exception("an alert probe failed")
                continue
            for signal in signals:
                self._submit(signal)
                n += 1
        return n

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
