"""The audit log: who did what, to what, when, from where. Rows are inserted, never changed.

Every change writes its row with `AuditLog.write` inside the transaction of the change
itself, so that no change is committed without its row and no row without its change. The
stores that make changes take an `Actor` (a key through the API, or the controller) for it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, insert, or_, select

from trimtab.store.engine import as_utc
from trimtab.store.tables import audit_log

# detail fields whose values are never written, whatever a caller passes
_SECRET_NAMES = frozenset(
    {"key", "api_key", "apikey", "secret", "password", "token", "authorization", "x-api-key"}
)


class BadCursor(ValueError):
    """A pagination cursor this server did not make."""


def scrub(value: Any) -> Any:
    """A copy of a detail value with every secret-named field replaced."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if str(k).lower() in _SECRET_NAMES else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change and from where: a key through the API (api/access.actor), or
    trimtab itself (the rollout controller). Stores take one and write the audit row in
    the change's own transaction."""

    key_id: str | None
    owner: str | None
    tenant: str | None = None  # the acting key's tenant
    remote_addr: str | None = None
    request_id: str | None = None  # the x-trimtab-request-id of the response
    forwarded_for: str | None = None

    @classmethod
    def system(cls, name: str) -> Actor:
        """trimtab acting on its own, e.g. Actor.system("controller")."""
        return cls(key_id=None, owner=name)

    @property
    def name(self) -> str:
        """How the timeline names the actor: the key's owner, else its id."""
        return self.owner or self.key_id or ""

    def event(
        self,
        action: str,
        *,
        target: str | None = None,
        tenant: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """An event of this actor; `tenant` defaults to the actor's own."""
        details = dict(detail or {})
        if self.forwarded_for:
            details["forwarded_for"] = self.forwarded_for
        return AuditEvent(
            action=action,
            actor_key_id=self.key_id,
            actor=self.owner,
            target=target,
            tenant=tenant if tenant is not None else self.tenant,
            detail=details,
            remote_addr=self.remote_addr,
            request_id=self.request_id,
        )


CONTROLLER = Actor.system("controller")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One administrative action."""

    action: str  # "key.create", "key.revoke", ...
    actor_key_id: str | None
    actor: str | None  # the owner of the acting key
    target: str | None = None
    tenant: str | None = None  # the tenant the action concerned
    detail: dict[str, Any] = field(default_factory=dict)
    remote_addr: str | None = None
    request_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "actor_key_id": self.actor_key_id,
            "actor": self.actor,
            "tenant": self.tenant,
            "action": self.action,
            "target": self.target,
            "detail": scrub(self.detail),
            "remote_addr": self.remote_addr,
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    actor: str | None = None  # an owner or a key id
    tenant: str | None = None
    target: str | None = None


def _encode_cursor(at: datetime, row_id: int) -> str:
    raw = orjson.dumps([as_utc(at).isoformat(), row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, row_id = orjson.loads(raw)
        return datetime.fromisoformat(when), int(row_id)
    except (ValueError, TypeError) as exc:
        raise BadCursor(f"invalid cursor '{cursor}'") from exc


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API shows it."""
    return {
        "id": row["id"],
        "at": as_utc(row["at"]).isoformat(),
        "action": row["action"],
        "actor": row["actor"],
        "actor_key_id": row["actor_key_id"],
        "tenant": row["tenant"],
        "target": row["target"],
        "detail": row["detail"],
        "remote_addr": row["remote_addr"],
        "request_id": row["request_id"],
    }


class AuditLog:
    """Append and read the `audit_log` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def write(conn: Connection, event: AuditEvent) -> None:
        """Append an event inside the caller's transaction."""
        conn.execute(insert(audit_log).values(**event.row()))

    def append(self, event: AuditEvent) -> None:
        """Append an event in a transaction of its own (blocking)."""
        with self.engine.begin() as conn:
            self.write(conn, event)

    def query(
        self, f: AuditFilter, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of events, newest first, and the cursor of the next page, if any."""
        c = audit_log.c
        where: list[Any] = []
        if f.since is not None:
            where.append(c.at >= f.since)
        if f.until is not None:
            where.append(c.at < f.until)
        if f.action is not None:
            where.append(c.action == f.action)
        if f.actor is not None:
            where.append(or_(c.actor == f.actor, c.actor_key_id == f.actor))
        if f.tenant is not None:
            where.append(c.tenant == f.tenant)
        if f.target is not None:
            where.append(c.target == f.target)
        if cursor:
            when, row_id = _decode_cursor(cursor)
            where.append(or_(c.at < when, and_(c.at == when, c.id < row_id)))
        query = select(audit_log).where(*where).order_by(c.at.desc(), c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(rows[-1]["at"], rows[-1]["id"])
        return rows, next_cursor
