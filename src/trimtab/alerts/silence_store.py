"""The silences table: a silence's matchers and its span, recorded, read and ended
(synchronous queries; the alert service decides what a silence mutes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, RowMapping, select, update

from trimtab.alerts.model import Matcher, Silence
from trimtab.store.engine import as_utc
from trimtab.store.tables import silences


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
