"""The alerts, silences and alert outbox tables: the queries, synchronous.

Safe with several processes on one PostgreSQL: an alert opens with an insert that yields
to the unique `open_key` (the dedup key while the alert is open), and every change of
state is a conditional update whose row count says which process made it, so a
condition opens, escalates, resolves (and is delivered) once. Outbox rows are claimed with
a conditional update of their lease, so no two processes deliver one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, RowMapping, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.alerts.model import (
    SEVERITY_RANK,
    Alert,
    AlertChange,
    AlertState,
    Matcher,
    Silence,
)
from trimtab.alerts.signal import Severity, Signal, Source
from trimtab.store.engine import as_utc
from trimtab.store.tables import alert_outbox, alerts, silences


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


# -- silences ---------------------------------------------------------------------------


def to_silence(row: RowMapping) -> Silence:
    return Silence(
        id=row["id"],
        matchers=tuple(Matcher.from_json(m) for m in row["matchers"]),
        starts_at=as_utc(row["starts_at"]),
        ends_at=as_utc(row["ends_at"]),
        created_by=row["created_by"],
        comment=row["comment"],
        created_at=as_utc(row["created_at"]),
    )


def insert_silence(
    engine: Engine,
    matchers: Sequence[Matcher],
    starts_at: datetime,
    ends_at: datetime,
    by: str | None,
    comment: str,
    now: datetime,
    on_change: Callable[[Connection, Silence], None] | None = None,
) -> Silence:
    """Record a silence; `on_change` runs in the same transaction (the audit row)."""
    with engine.begin() as conn:
        new_id = conn.execute(
            silences.insert()
            .values(
                matchers=[m.to_json() for m in matchers],
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=by,
                comment=comment,
                created_at=now,
            )
            .returning(silences.c.id)
        ).scalar_one()
        row = conn.execute(select(silences).where(silences.c.id == new_id)).mappings().one()
        silence = to_silence(row)
        if on_change is not None:
            on_change(conn, silence)
    return silence


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    rows = conn.execute(
        select(silences).where(silences.c.starts_at <= now, silences.c.ends_at > now)
    ).mappings()
    return [to_silence(r) for r in rows]


def list_silences(engine: Engine, now: datetime, *, expired_too: bool, limit: int) -> list[Silence]:
    query = select(silences).order_by(silences.c.ends_at.desc(), silences.c.id.desc())
    if not expired_too:
        query = query.where(silences.c.ends_at > now)
    with engine.connect() as conn:
        return [to_silence(r) for r in conn.execute(query.limit(limit)).mappings()]


def read_silence(engine: Engine, silence_id: int) -> Silence | None:
    with engine.connect() as conn:
        row = conn.execute(select(silences).where(silences.c.id == silence_id)).mappings().first()
    return to_silence(row) if row is not None else None


def end_silence(
    engine: Engine,
    silence_id: int,
    now: datetime,
    on_change: Callable[[Connection, Silence], None] | None = None,
) -> Silence | None:
    """End an active silence now; None when there is no such active silence."""
    with engine.begin() as conn:
        result = conn.execute(
            update(silences)
            .where(silences.c.id == silence_id, silences.c.ends_at > now)
            .values(ends_at=now)
        )
        if not result.rowcount:
            return None
        row = conn.execute(select(silences).where(silences.c.id == silence_id)).mappings().one()
        silence = to_silence(row)
        if on_change is not None:
            on_change(conn, silence)
    return silence


# -- the outbox -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    alert_id: int
    sink: str
    event: str
    payload: dict[str, Any]
    attempts: int  # including the one just claimed
    created_at: datetime


def enqueue(
    conn: Connection,
    alert_id: int,
    sink: str,
    event: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> None:
    conn.execute(
        alert_outbox.insert().values(
            alert_id=alert_id,
            sink=sink,
            event=event,
            payload=dict(payload),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def triggered_sinks(conn: Connection, alert_id: int) -> list[str]:
    """The sinks that were to be told this alert fired (told of its ack and end too)."""
    rows = conn.execute(
        select(alert_outbox.c.sink)
        .where(alert_outbox.c.alert_id == alert_id, alert_outbox.c.event == "trigger")
        .distinct()
    )
    return sorted(r[0] for r in rows)


def claim(
    engine: Engine, worker: str, now: datetime, lease_s: float, limit: int
) -> list[OutboxRow]:
    """Take up to `limit` due rows for `worker` until now + `lease_s`.

    A row is due when pending, its next attempt has come, no live lease holds it, and no
    earlier row for the same alert and sink is still pending (a sink hears of an alert's
    trigger before its acknowledge and resolve). Each is taken with a conditional update,
    so of two processes claiming at once, one gets it.
    """
    earlier = alert_outbox.alias("earlier")
    blocked = (
        select(earlier.c.id)
        .where(
            earlier.c.alert_id == alert_outbox.c.alert_id,
            earlier.c.sink == alert_outbox.c.sink,
            earlier.c.status == "pending",
            earlier.c.id < alert_outbox.c.id,
        )
        .exists()
    )
    free = or_(alert_outbox.c.lease_until.is_(None), alert_outbox.c.lease_until <= now)
    due = and_(alert_outbox.c.status == "pending", alert_outbox.c.next_attempt_at <= now, free)
    until = now + timedelta(seconds=lease_s)
    taken: list[OutboxRow] = []
    with engine.begin() as conn:
        ids = conn.scalars(
            select(alert_outbox.c.id).where(due, ~blocked).order_by(alert_outbox.c.id).limit(limit)
        ).all()
        for row_id in ids:
            result = conn.execute(
                update(alert_outbox)
                .where(alert_outbox.c.id == row_id, due)
                .values(lease_until=until, leased_by=worker, attempts=alert_outbox.c.attempts + 1)
            )
            if result.rowcount:
                row = (
                    conn.execute(select(alert_outbox).where(alert_outbox.c.id == row_id))
                    .mappings()
                    .one()
                )
                taken.append(
                    OutboxRow(
                        row["id"],
                        row["alert_id"],
                        row["sink"],
                        row["event"],
                        dict(row["payload"]),
                        row["attempts"],
                        as_utc(row["created_at"]),
                    )
                )
    return taken


def finish(
    engine: Engine,
    row_id: int,
    worker: str,
    now: datetime,
    *,
    delivered: bool,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Settle a claimed row: delivered, to retry at `retry_at`, or dead (neither). False
    when the lease was lost (another process holds the row now)."""
    values: dict[str, Any] = {"lease_until": None, "leased_by": None, "last_error": error}
    if delivered:
        values.update(status="delivered", delivered_at=now)
    elif retry_at is not None:
        values.update(next_attempt_at=retry_at)
    else:
        values.update(status="dead")
    with engine.begin() as conn:
        result = conn.execute(
            update(alert_outbox)
            .where(
                alert_outbox.c.id == row_id,
                alert_outbox.c.leased_by == worker,
                alert_outbox.c.status == "pending",
            )
            .values(**values)
        )
    return bool(result.rowcount)


def outbox_rows(engine: Engine, alert_id: int | None = None) -> list[dict[str, Any]]:
    """The outbox, oldest first (for `alerts show` and tests)."""
    query = select(alert_outbox).order_by(alert_outbox.c.id)
    if alert_id is not None:
        query = query.where(alert_outbox.c.alert_id == alert_id)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {
            "id": r["id"],
            "alert_id": r["alert_id"],
            "sink": r["sink"],
            "event": r["event"],
            "status": r["status"],
            "attempts": r["attempts"],
            "last_error": r["last_error"],
            "created_at": as_utc(r["created_at"]).isoformat(),
            "delivered_at": (
                as_utc(r["delivered_at"]).isoformat() if r["delivered_at"] is not None else None
            ),
            "payload": r["payload"],
        }
        for r in rows
    ]


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(alert_outbox)
                .where(alert_outbox.c.status == "pending")
            )
            or 0
        )


def release(engine: Engine, worker: str, now: datetime) -> int:
    """Free the rows `worker` holds (it is stopping): pending, due now."""
    with engine.begin() as conn:
        result = conn.execute(
            update(alert_outbox)
            .where(alert_outbox.c.leased_by == worker, alert_outbox.c.status == "pending")
            .values(lease_until=None, leased_by=None, next_attempt_at=now)
        )
    return int(result.rowcount or 0)
