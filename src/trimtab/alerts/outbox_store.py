"""The alert outbox table: the deliveries an alert's changes owe its sinks, queued in the
change's transaction and claimed by the delivery workers (alerts/outbox.py).

Safe with several processes on one PostgreSQL: a row is claimed with a conditional update
of its lease, so no two processes deliver one row, and settled only by its lease holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update

from trimtab.store.engine import as_utc
from trimtab.store.tables import alert_outbox


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
