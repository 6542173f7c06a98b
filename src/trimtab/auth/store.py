"""The `api_keys` table: new keys, revocations, listings and the gateway's snapshot."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import Connection, Engine, insert, select, update

from trimtab.auth.keyring import StoredKey, key_hash, key_id_of
from trimtab.store.engine import as_utc
from trimtab.store.tables import api_keys
from trimtab.types import Principal, Role

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = get_args(Role)
KEY_PREFIX = "tt-"


def new_key() -> str:
    """A fresh secret: 'tt-' and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hint_of(key: str) -> str:
    """Enough of a key to recognise it, far too little to use it."""
    return f"{key[:5]}...{key[-4:]}"


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One row of `api_keys` (the hash stays inside the store module and the gateway)."""

    id: str
    hint: str
    tenant: str
    role: str
    owner: str
    name: str | None
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"

    def view(self) -> dict[str, Any]:
        """The row as the API shows it."""
        return {
            "id": self.id,
            "source": "store",
            "tenant": self.tenant,
            "role": self.role,
            "owner": self.owner,
            "name": self.name,
            "hint": self.hint,
            "status": self.status(),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _maybe_utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


_COLUMNS = [c for c in api_keys.c if c.name != "key_hash"]


def _row(data: Any) -> KeyRow:
    return KeyRow(
        id=data["id"],
        hint=data["hint"],
        tenant=data["tenant"],
        role=data["role"],
        owner=data["owner"],
        name=data["name"],
        created_at=as_utc(data["created_at"]),
        created_by=data["created_by"],
        expires_at=_maybe_utc(data["expires_at"]),
        revoked_at=_maybe_utc(data["revoked_at"]),
        revoked_by=data["revoked_by"],
    )


def stored_key(row: KeyRow) -> StoredKey:
    """What the gateway keeps in memory for a row."""
    role: Any = row.role
    return StoredKey(
        principal=Principal(row.tenant, role, row.id, row.owner),
        expires_at=row.expires_at.timestamp() if row.expires_at is not None else None,
        revoked=row.revoked_at is not None,
    )


class KeyStore:
    """Reads and writes `api_keys`. Synchronous: callers run it in a thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(
        self,
        conn: Connection,
        key: str,
        *,
        tenant: str,
        role: str,
        owner: str,
        name: str | None,
        created_by: str | None,
        expires_at: datetime | None,
    ) -> tuple[str, KeyRow]:
        """Insert a new key (its hash and hint) inside the caller's transaction."""
        digest = key_hash(key)
        row = KeyRow(
            id=key_id_of(digest),
            hint=hint_of(key),
            tenant=tenant,
            role=role,
            owner=owner,
            name=name,
            created_at=datetime.now(UTC),
            created_by=created_by,
            expires_at=expires_at,
            revoked_at=None,
            revoked_by=None,
        )
        values = {c.name: getattr(row, c.name) for c in _COLUMNS}
        conn.execute(insert(api_keys).values(key_hash=digest, **values))
        return digest, row

    def revoke(self, conn: Connection, key_id: str, by: str | None) -> tuple[str, KeyRow] | None:
        """Mark a key revoked inside the caller's transaction; None when it is not there or
        was already revoked (then nothing changes)."""
        now = datetime.now(UTC)
        done = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by)
        )
        if done.rowcount != 1:
            return None
        found = conn.execute(
            select(api_keys.c.key_hash, *_COLUMNS).where(api_keys.c.id == key_id)
        ).mappings()
        data = found.one()
        return data["key_hash"], _row(data)

    def get(self, key_id: str) -> KeyRow | None:
        with self.engine.connect() as conn:
            data = conn.execute(select(*_COLUMNS).where(api_keys.c.id == key_id)).mappings()
            first = data.first()
        return _row(first) if first is not None else None

    def list_keys(self, tenant: str | None = None) -> list[KeyRow]:
        """Keys, newest first, all tenants or one."""
        query = select(*_COLUMNS).order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    def snapshot(self) -> dict[str, StoredKey]:
        """Every key by hash, revoked ones included (so they are refused as revoked)."""
        query = select(api_keys.c.key_hash, *_COLUMNS)
        out: dict[str, StoredKey] = {}
        with self.engine.connect() as conn:
            for data in conn.execute(query).mappings():
                row = _row(data)
                if row.role not in ROLES:
                    log.warning("api key %s has unknown role %r; ignored", row.id, row.role)
                    continue
                out[data["key_hash"]] = stored_key(row)
        return out
