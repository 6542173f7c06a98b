"""The alert service: signals in, alerts recorded, notifications put in the outbox.

`AlertService.observe` is what every producer calls (the SLO evaluator, incidents, the
budget pipeline, the condition probes): synchronous and store-bound, so callers on the
event loop run it in a thread (`asyncio.to_thread`) or use `SignalQueue`
(alerts/queue.py), which never blocks. A change of an alert and the notifications it
causes are written in one transaction, so the process that made the change is the one
that enqueues them: two processes observing one condition page once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from trimtab.alerts import outbox_store, silence_store, store
from trimtab.alerts.model import (
    Alert,
    AlertChange,
    Matcher,
    Silence,
    match_labels,
    silenced_by,
)
from trimtab.alerts.routing import Recipient, recipient, sinks_for
from trimtab.alerts.signal import Signal, Source
from trimtab.alerts.sinks import Event, build
from trimtab.config import AlertsConfig
from trimtab.errors import Conflict, Invalid, NotFound

OwnerLookup = Callable[[Mapping[str, str]], str | None]
MAX_SILENCE = timedelta(days=365)


def _now() -> datetime:
    return datetime.now(UTC)


class AlertService:
    """Alerts from signals, acknowledgements and silences, over one store.

    `owners` finds an alert's owner from its labels when the producer gave no `owner`
    label (the app passes the route's `owner:` from the route table).
    """

    def __init__(
        self,
        engine: Engine,
        config: AlertsConfig,
        *,
        owners: OwnerLookup | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._engine = engine
        self.config = config
        self._owners = owners
        self._clock = clock
        # one writer per process: SQLite's deferred transactions would otherwise meet
        # "database is locked" on read-then-write; PostgreSQL relies on the conditions
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self._engine

    def now(self) -> datetime:
        return self._clock()

    # -- signals ------------------------------------------------------------------------

    def observe(self, signals: Sequence[Signal]) -> list[AlertChange]:
        """Record each signal; the changes it made (a cleared signal with no open alert
        makes none). Notifications for opened, escalated and resolved alerts are in the
        outbox when this returns."""
        changes: list[AlertChange] = []
        with self._lock:
            for signal in signals:
                with self._engine.begin() as conn:
                    now = self._clock()
                    opening = self._opening(conn, signal, now) if signal.firing else None
                    change = store.apply_signal(conn, signal, opening, now)
                    if change is not None:
                        change = self._notify(conn, change, now)
                        changes.append(change)
        return changes

    def resolve_expired(self) -> list[AlertChange]:
        """Resolve open alerts whose `expires_at` has passed (a budget's period ended)."""
        changes: list[AlertChange] = []
        with self._lock, self._engine.begin() as conn:
            now = self._clock()
            for alert in store.expired(conn, now):
                resolved = store.resolve(conn, alert.id, now)
                if resolved is not None:
                    changes.append(self._notify(conn, AlertChange(resolved, "resolved"), now))
        return changes

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction under this process's alert writer lock, for a change elsewhere
        whose alerts end with it (`resolve_in`: an SLO deleted): all of it or none."""
        with self._lock, self._engine.begin() as conn:
            yield conn

    def resolve_in(
        self, conn: Connection, source: Source, key_prefix: str, reason: str
    ) -> list[AlertChange]:
        """Resolve, in `conn`'s transaction (`transaction()`), every open alert of `source`
        whose dedup key starts with `key_prefix`, its summary becoming `reason`; the sinks
        that heard of each hear of its end."""
        return self._resolve_where(conn, source, lambda key: key.startswith(key_prefix), reason)

    def resolve_orphans(
        self, source: Source, living: Callable[[], Iterable[str]], reason: str
    ) -> list[AlertChange]:
        """Resolve the open alerts of `source` whose dedup key starts with none of the
        prefixes `living()` names (the conditions that still exist), saying `reason`. The
        alerts are read before `living()` is asked, so a condition created meanwhile keeps
        its alert."""
        with self.transaction() as conn:
            found = store.open_of(conn, source)
            if not found:
                return []
            prefixes = tuple(living())
            orphans = [a for a in found if not a.dedup_key.startswith(prefixes)]
            return self._resolve_all(conn, orphans, reason)

    def _resolve_where(
        self, conn: Connection, source: Source, which: Callable[[str], bool], reason: str
    ) -> list[AlertChange]:
        found = [a for a in store.open_of(conn, source) if which(a.dedup_key)]
        return self._resolve_all(conn, found, reason)

    def _resolve_all(self, conn: Connection, found: list[Alert], reason: str) -> list[AlertChange]:
        now = self._clock()
        changes = []
        for alert in found:
            resolved = store.resolve(conn, alert.id, now, reason)
            if resolved is not None:
                changes.append(self._notify(conn, AlertChange(resolved, "resolved"), now))
        return changes

    def _owner(self, labels: Mapping[str, str]) -> str | None:
        owner = labels.get("owner")
        if owner:
            return owner
        return self._owners(labels) if self._owners is not None else None

    def _opening(self, conn: Connection, signal: Signal, now: datetime) -> store.Opening:
        owner = self._owner(signal.labels)
        rcpt = recipient(self.config, owner, signal.at)
        matchable = match_labels(signal.labels, signal.severity, signal.source)
        silenced = silenced_by(silence_store.active_silences(conn, now), matchable, now) is not None
        return store.Opening(owner, rcpt.on_call or rcpt.schedule, silenced)

    def recipient_of(self, alert: Alert) -> Recipient:
        return recipient(self.config, alert.owner, alert.started_at)

    def _notify(self, conn: Connection, change: AlertChange, now: datetime) -> AlertChange:
        alert = change.alert
        if change.change in ("opened", "escalated"):
            if alert.silenced:
                return change
            if change.change == "escalated":
                labels = match_labels(alert.labels, alert.severity, alert.source)
                if silenced_by(silence_store.active_silences(conn, now), labels, now) is not None:
                    return change  # silenced since it opened: recorded, not sent
            names = sinks_for(
                self.config,
                match_labels(alert.labels, alert.severity, alert.source),
                alert.severity,
            )
            self._enqueue(conn, alert, names, "trigger", now)
        elif change.change == "acknowledged":
            self._enqueue(
                conn, alert, outbox_store.triggered_sinks(conn, alert.id), "acknowledge", now
            )
        elif change.change == "resolved":
            self._enqueue(conn, alert, outbox_store.triggered_sinks(conn, alert.id), "resolve", now)
        return change

    def _enqueue(
        self, conn: Connection, alert: Alert, names: Sequence[str], event: Event, now: datetime
    ) -> None:
        rcpt = self.recipient_of(alert)
        for name in names:
            sink = self.config.sinks.get(name)
            if sink is None:  # a sink removed from the config since the alert fired
                continue
            body = build(name, sink, event, alert, rcpt, self.config.external_url)
            if body is not None:
                outbox_store.enqueue(conn, alert.id, name, event, body, now)

    # -- operators ----------------------------------------------------------------------

    def get(self, alert_id: int) -> Alert:
        alert = store.read_alert(self._engine, alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        return alert

    def acknowledge(
        self,
        alert_id: int,
        by: str | None,
        comment: str,
        on_change: Callable[[Connection, Alert], None] | None = None,
    ) -> AlertChange:
        """firing -> acknowledged (sinks that heard of it are told: PagerDuty's
        `acknowledge`); acknowledging an acknowledged alert changes nothing; a resolved
        one is refused."""
        with self._lock, self._engine.begin() as conn:
            now = self._clock()
            acked = store.acknowledge(conn, alert_id, by, comment, now)
            if acked is not None:
                if on_change is not None:
                    on_change(conn, acked)  # the audit row, in the same transaction
                return self._notify(conn, AlertChange(acked, "acknowledged"), now)
            current = store.get_alert(conn, alert_id)
        if current is None:
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        if current.state == "resolved":
            raise Conflict(
                f"alert {alert_id} is resolved; there is nothing to acknowledge",
                code="alert_resolved",
            )
        return AlertChange(current, "unchanged")

    def silence(
        self,
        matchers: Sequence[str],
        duration: timedelta,
        by: str | None,
        comment: str,
        on_change: Callable[[Connection, Silence], None] | None = None,
    ) -> Silence:
        """Suppress delivery of alerts matching every matcher, from now for `duration`."""
        if not matchers:
            raise Invalid("a silence needs at least one matcher", param="matchers")
        if not comment.strip():
            raise Invalid("a silence needs a comment saying why", param="comment")
        if duration <= timedelta(0) or duration > MAX_SILENCE:
            raise Invalid("a silence lasts more than 0 s and at most 365 days", param="for")
        parsed = []
        for text in matchers:
            try:
                parsed.append(Matcher.parse(text))
            except ValueError as exc:
                raise Invalid(str(exc), param="matchers") from exc
        now = self._clock()
        return silence_store.insert_silence(
            self._engine, parsed, now, now + duration, by, comment.strip(), now, on_change
        )

    def unsilence(
        self, silence_id: int, on_change: Callable[[Connection, Silence], None] | None = None
    ) -> Silence:
        ended = silence_store.end_silence(self._engine, silence_id, self._clock(), on_change)
        if ended is not None:
            return ended
        if silence_store.read_silence(self._engine, silence_id) is None:
            raise NotFound(f"no silence {silence_id}", code="silence_not_found")
        raise Conflict(f"silence {silence_id} has already ended", code="silence_ended")

    def get_silence(self, silence_id: int) -> Silence | None:
        return silence_store.read_silence(self._engine, silence_id)

    def silences(self, *, expired_too: bool = False, limit: int = 100) -> list[Silence]:
        return silence_store.list_silences(
            self._engine, self._clock(), expired_too=expired_too, limit=limit
        )

    def alerts(
        self,
        *,
        states: Sequence[str] = (),
        severities: Sequence[str] = (),
        sources: Sequence[str] = (),
        limit: int = 100,
    ) -> list[Alert]:
        return store.list_alerts(
            self._engine, states=states, severities=severities, sources=sources, limit=limit
        )
