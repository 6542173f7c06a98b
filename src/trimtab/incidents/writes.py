"""What every write of an incident does inside its transaction: lock the incident's row,
add the entry to its own timeline (`incident_events`) and the audit row, and the state
moves (acknowledge, mitigate, resolve, reopen, close) with the rules that allow them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, insert, select, update

from trimtab.audit.log import Actor, AuditLog
from trimtab.errors import Conflict, NotFound
from trimtab.incidents.model import ACTIVE, MOVES, close_missing
from trimtab.incidents.records import Event
from trimtab.store.engine import as_utc
from trimtab.store.tables import incident_events, incident_rules, incidents


def new_row_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def lock(conn: Connection, incident_id: str) -> str:
    """The incident's scope, its row locked for the transaction (PostgreSQL)."""
    scope = conn.execute(
        select(incidents.c.scope).where(incidents.c.id == incident_id).with_for_update()
    ).scalar()
    if scope is None:
        raise NotFound(f"no incident '{incident_id}'")
    return str(scope)


def add_event(
    conn: Connection,
    incident_id: str,
    kind: str,
    by: Actor,
    message: str | None,
    detail: dict[str, Any] | None,
    at: datetime,
) -> Event:
    event_id = new_row_id(conn.execute(
        insert(incident_events).values(
            incident_id=incident_id, at=at, kind=kind, actor=by.name or None,
            message=message, detail=detail,
        )
    ))  # fmt: skip
    return Event(int(event_id), at, kind, by.name or None, message, detail)


def audit(
    conn: Connection,
    by: Actor,
    action: str,
    incident_id: str,
    scope: str | None,
    detail: dict[str, Any],
) -> None:
    AuditLog.write(conn, by.event(action, target=incident_id, tenant=scope or None, detail=detail))


def apply_move(
    conn: Connection,
    incident_id: str,
    move: str,
    by: Actor,
    message: str | None,
    at: datetime,
    quiet: bool = False,
) -> None:
    c = incidents.c
    row = conn.execute(select(incidents).where(c.id == incident_id)).one()
    sources, target = MOVES[move]
    if move == "close" and row.state != "closed":
        rules = conn.execute(
            select(incident_rules.c.id).where(incident_rules.c.incident_id == incident_id)
        ).all()
        missing = close_missing(row.state, row.postmortem is not None, len(rules))
        if missing:
            raise Conflict(
                f"incident {incident_id} cannot be closed yet; it needs " + "; ".join(missing),
                code="incident_not_closable",
            )
    if row.state not in sources:
        if quiet:
            return
        raise Conflict(
            f"incident {incident_id} is {row.state}: cannot {move} it "
            f"(only when {' or '.join(sources)})",
            code="incident_state",
        )
    values: dict[str, Any] = {}
    if move == "close":
        values["closed_at"] = at
    if move == "acknowledge":
        if row.acknowledged_at is not None:
            if quiet:
                return
            raise Conflict(
                f"incident {incident_id} was already acknowledged at "
                f"{as_utc(row.acknowledged_at).isoformat()}",
                code="incident_state",
            )
        values["acknowledged_at"] = at
    if move == "mitigate":
        values["mitigated_at"] = at
    if move == "resolve":
        values["resolved_at"] = at
        if row.mitigated_at is None:
            values["mitigated_at"] = at  # resolved is mitigated too
    if move == "reopen":
        values["resolved_at"] = None  # its dedup key stays cleared: a new page opens anew
    if target is not None:
        values["state"] = target
        if target not in ACTIVE:
            values["open_dedup_key"] = None
    conn.execute(update(incidents).where(c.id == incident_id).values(**values))
    add_event(conn, incident_id, move, by, message, {"from": row.state, "to": target}, at)
    audit(
        conn, by, f"incident.{move}", incident_id, row.scope,
        {"from": row.state, "to": target or row.state, "message": message},
    )  # fmt: skip
