"""Who may call and what each caller did: API keys (auth/) and the append-only audit log
(audit/)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
)

from trimtab.store.tables._metadata import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),  # "key_" + the hash's first 12 hex digits
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256; never the key
    Column("hint", String(16), nullable=False),  # the key's first and last characters
    Column("tenant", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("owner", String(256), nullable=False),
    Column("name", String(256)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(256)),
    Index("ix_api_keys_tenant", "tenant"),
)

# append-only: rows are inserted, never updated or deleted
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_key_id", String(40)),
    Column("actor", String(256)),  # the owner of the key that acted
    Column("tenant", String(128)),
    Column("action", String(64), nullable=False),
    Column("target", String(256)),
    Column("detail", JSON),
    Column("remote_addr", String(64)),
    Column("request_id", String(40)),
    Index("ix_audit_log_at", "at"),
)
