"""The alerts table: the queries, synchronous (the silences' are alerts/silence_store.py,
the outbox's alerts/outbox_store.py).

Safe with several processes on one PostgreSQL: an alert opens with an insert that yields
to the unique `open_key` (the dedup key while the alert is open), and every change of
state is a conditional update whose row count says which process made it, so a
condition opens, escalates, resolves (and is delivered) once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, RowMapping, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.alerts.model import (
    SEVERITY_RANK,
    Alert,
    AlertChange,
    AlertState,
)
from trimtab.alerts.signal import Severity, Signal, Source
from trimtab.store.engine import as_utc
from trimtab.store.tables import alerts


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def to_alert(row: RowMapping) -> Alert:
    return Alert(
        id=row["id"],
        dedup_key=row["dedup_key"],
        source=cast(Source, row["source"]),
        severity=cast(Severity, row["severity"]),
        state=cast(AlertState, row["state"]),
        summary=row["summary"],
        labels=dict(row["labels"] or {}),
        details=dict(row["details"] or {}),
        owner=row["owner"],
        on_call=row["on_call"],
        silenced=bool(row["silenced"]),
        count=row["count"],
        started_at=as_utc(row["started_at"]),
        updated_at=as_utc(row["updated_at"]),
        acked_at=_utc(row["acked_at"]),
        acked_by=row["acked_by"],
        ack_comment=row["ack_comment"],
        resolved_at=_utc(row["resolved_at"]),
        expires_at=_utc(row["expires_at"]),
    )


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def get_alert(conn: Connection, alert_id: int) -> Alert | None:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
    return to_alert(row) if row is not None else None


def open_alert(conn: Connection, dedup_key: str) -> Alert | None:
    row = conn.execute(select(alerts).where(alerts.c.open_key == dedup_key)).mappings().first()
    return to_alert(row) if row is not None else None


def _json_safe(details: Mapping[str, object]) -> dict[str, Any]:
    """Details as JSON will keep them (datetimes as ISO text, the rest as str if odd)."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        out[str(key)] = _plain(value)
    return out


def _plain(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


@dataclass(frozen=True, slots=True)
class Opening:
    """Who an alert goes to, decided when it opens (owner and on call at its start)."""

    owner: str | None
    on_call: str | None
    silenced: bool


def apply_signal(
    conn: Connection,
    signal: Signal,
    opening: Opening | None,
    now: datetime,
) -> AlertChange | None:
    """Turn one signal into a change of its alert; None when a cleared signal finds none.

    `opening` is used only when the signal opens the alert. Call inside a transaction.
    """
    for _ in range(3):  # an alert resolved or opened by another process meanwhile: retry
        current = open_alert(conn, signal.dedup_key)
        if not signal.firing:
            if current is None:
                return None
            resolved = _resolve(conn, current.id, now)
            if resolved is not None:
                return AlertChange(resolved, "resolved")
            continue
        if current is None:
            created = _open(conn, signal, opening or Opening(None, None, False), now)
            if created is not None:
                return AlertChange(created, "opened")
            continue
        changed = _update(conn, current, signal, now)
        if changed is not None:
            return changed
    raise RuntimeError(f"alert {signal.dedup_key!r} kept changing under this update")


def _open(conn: Connection, signal: Signal, opening: Opening, now: datetime) -> Alert | None:
    values = {
        "dedup_key": signal.dedup_key,
        "open_key": signal.dedup_key,
        "source": signal.source,
        "severity": signal.severity,
        "state": "firing",
        "summary": signal.summary,
        "labels": dict(signal.labels),
        "details": _json_safe(signal.details),
        "owner": opening.owner,
        "on_call": opening.on_call,
        "silenced": opening.silenced,
        "count": 1,
        "started_at": signal.at,
        "updated_at": now,
        "expires_at": signal.expires_at,
    }
    statement = (
        _insert(conn)(alerts)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["open_key"])
        .returning(alerts.c.id)
    )
    new_id = conn.execute(statement).scalar()
    if new_id is None:
        return None  # another process opened it first
    return get_alert(conn, int(new_id))


def _update(conn: Connection, current: Alert, signal: Signal, now: datetime) -> AlertChange | None:
    escalates = SEVERITY_RANK[signal.severity] > SEVERITY_RANK[current.severity]
    values: dict[str, Any] = {
        "count": alerts.c.count + 1,
        "updated_at": now,
        "summary": signal.summary,
        "details": _json_safe(signal.details),
        "labels": {**current.labels, **signal.labels},
        "expires_at": signal.expires_at,
    }
    where = [alerts.c.id == current.id, alerts.c.open_key == signal.dedup_key]
    if escalates:
        values["severity"] = signal.severity
        where.append(alerts.c.severity == current.severity)
    result = conn.execute(update(alerts).where(*where).values(**values))
    if not result.rowcount:
        if escalates and open_alert(conn, signal.dedup_key) is not None:
            # escalated by another process: count this signal as an update of it
            return _update(conn, _must(conn, current.id), signal, now)
        return None
    alert = _must(conn, current.id)
    return AlertChange(alert, "escalated" if escalates else "updated")


def _must(conn: Connection, alert_id: int) -> Alert:
    alert = get_alert(conn, alert_id)
    if alert is None:  # pragma: no cover - alerts are never deleted
        raise RuntimeError(f"alert {alert_id} vanished")
    return alert


def _resolve(
    conn: Connection, alert_id: int, now: datetime, summary: str | None = None
) -> Alert | None:
    values: dict[str, Any] = {
        "state": "resolved",
        "open_key": None,
        "resolved_at": now,
        "updated_at": now,
    }
    if summary is not None:
        values["summary"] = summary
    result = conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.open_key.is_not(None))
        .values(**values)
    )
    return _must(conn, alert_id) if result.rowcount else None


def expired(conn: Connection, now: datetime) -> list[Alert]:
    """Open alerts whose condition ended by itself (their `expires_at` has passed)."""
    rows = conn.execute(
        select(alerts).where(alerts.c.open_key.is_not(None), alerts.c.expires_at <= now)
    ).mappings()
    return [to_alert(r) for r in rows]


def resolve(
    conn: Connection, alert_id: int, now: datetime, summary: str | None = None
) -> Alert | None:
    """Resolve an open alert (its summary becoming `summary`, the reason, when given); None
    when it was not open (or another process resolved it)."""
    return _resolve(conn, alert_id, now, summary)


def open_of(conn: Connection, source: Source) -> list[Alert]:
    """The open alerts of one source."""
    query = select(alerts).where(alerts.c.open_key.is_not(None), alerts.c.source == source)
    return [to_alert(r) for r in conn.execute(query.order_by(alerts.c.id)).mappings()]


def acknowledge(
    conn: Connection, alert_id: int, by: str | None, comment: str, now: datetime
) -> Alert | None:
    """firing -> acknowledged; None when the alert was not firing."""
    result = conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.state == "firing")
        .values(
            state="acknowledged", acked_at=now, acked_by=by, ack_comment=comment, updated_at=now
        )
    )
    return _must(conn, alert_id) if result.rowcount else None


def list_alerts(
    engine: Engine,
    *,
    states: Sequence[str] = (),
    severities: Sequence[str] = (),
    sources: Sequence[str] = (),
    limit: int = 100,
) -> list[Alert]:
    """Alerts, newest first."""
    query = select(alerts).order_by(alerts.c.started_at.desc(), alerts.c.id.desc())
    if states:
        query = query.where(alerts.c.state.in_(list(states)))
    if severities:
        query = query.where(alerts.c.severity.in_(list(severities)))
    if sources:
        query = query.where(alerts.c.source.in_(list(sources)))
    with engine.connect() as conn:
        return [to_alert(r) for r in conn.execute(query.limit(limit)).mappings()]


def read_alert(engine: Engine, alert_id: int) -> Alert | None:
    with engine.connect() as conn:
        return get_alert(conn, alert_id)


def open_alerts(engine: Engine) -> list[Alert]:
    with engine.connect() as conn:
        rows = conn.execute(select(alerts).where(alerts.c.open_key.is_not(None))).mappings()
        return [to_alert(r) for r in rows]
