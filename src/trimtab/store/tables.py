"""The schema, one definition for SQLite and PostgreSQL (migrations mirror it)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

requests = Table(
    "requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("api", String(16), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("key_id", String(64)),
    Column("request_model", String(256)),
    Column("response_model", String(256)),
    Column("upstream_model", String(256)),
    Column("provider", String(128)),
    Column("provider_kind", String(32)),
    Column("response_id", String(256)),
    Column("user_id", String(256)),
    Column("session_id", String(256)),
    Column("feature", String(256)),
    Column("route", String(256)),
    Column("version", String(64)),
    Column("status_code", Integer, nullable=False),
    Column("error_type", String(64)),
    Column("error_message", Text),
    Column("duration_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("overhead_ms", Float, nullable=False),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cost_usd", Float),
    Column("streamed", Boolean, nullable=False),
    Column("finish_reasons", JSON),
    Column("request_body", Text),
    Column("response_body", Text),
    Column("attributes", JSON),
    Index("ix_requests_started", "started_at", "id"),
    Index("ix_requests_tenant_started", "tenant", "started_at"),
    Index("ix_requests_model_started", "request_model", "started_at"),
)

# One row per minute and combination of dimensions; "" stands for "none" so the
# unique key works the same on both databases.
ROLLUP_DIMENSIONS = ("model", "provider", "tenant", "feature", "status_code", "route", "version")

rollups = Table(
    "rollups_minute",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("model", String(256), nullable=False),
    Column("provider", String(128), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("feature", String(256), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("route", String(256), nullable=False),
    Column("version", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_sketch", LargeBinary, nullable=False),
    Column("ttft_sketch", LargeBinary, nullable=False),
    UniqueConstraint("minute", *ROLLUP_DIMENSIONS, name="uq_rollups_minute_dims"),
    Index("ix_rollups_minute", "minute"),
)
