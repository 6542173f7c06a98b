"""Incidents from the alert pipeline: `AlertRuntime.on_changes` calls `PageOpener` with what
each batch of signals did. A page-severity alert that opened (or escalated from a ticket)
opens an incident, or attaches to the open one of the same dedup key; acknowledging the
alert acknowledges that incident. A silenced alert opens nothing: someone chose to hear
nothing of it. The store work runs in a thread, off the event loop; `stop` waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from trimtab.alerts.model import Alert, AlertChange
from trimtab.audit.log import Actor
from trimtab.incidents.store import ALERTS, IncidentStore

log = logging.getLogger("trimtab.incidents")


def pages_of(changes: Sequence[AlertChange]) -> tuple[list[Alert], list[Alert]]:
    """(the page alerts that should open or attach to an incident, the alerts acknowledged)."""
    pages = [
        c.alert
        for c in changes
        if c.change in ("opened", "escalated")
        and c.alert.severity == "page"
        and not c.alert.silenced
    ]
    acks = [c.alert for c in changes if c.change == "acknowledged"]
    return pages, acks


class PageOpener:
    def __init__(self, store: IncidentStore) -> None:
        self._store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, changes: Sequence[AlertChange]) -> None:
        pages, acks = pages_of(changes)
        if not pages and not acks:
            return
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.apply, pages, acks))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def apply(self, pages: Sequence[Alert], acks: Sequence[Alert]) -> None:
        """Open or attach for each page, acknowledge for each ack; a failure is logged and
        the others go on (the alert itself is recorded and delivered either way)."""
        for alert in pages:
            try:
                opened = self._store.open_from_alert(
                    dedup_key=alert.dedup_key,
                    labels=dict(alert.labels),
                    severity=alert.severity,
                    summary=alert.summary,
                    started_at=alert.started_at,
                    source=alert.source,
                )
            except Exception:
                log.exception("alert %s: opening its incident failed", alert.dedup_key)
                continue
            if opened is not None:
                incident, created = opened
                log.info(
                    "alert %s %s incident %s",
                    alert.dedup_key,
                    "opened" if created else "attached to",
                    incident.id,
                )
        for alert in acks:
            by = Actor.system(alert.acked_by or ALERTS.name)
            try:
                self._store.acknowledge_from_alert(alert.dedup_key, by, alert.acked_at)
            except Exception:
                log.exception("alert %s: acknowledging its incident failed", alert.dedup_key)

    async def stop(self) -> None:
        """Wait for the store work already started."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
