"""What the telemetry writer records (telemetry/): each request's row, the minute rollups
and their hourly and daily compaction, and each session's requests and spend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from trimtab.store.tables._metadata import metadata

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
    Column("upstream_request_body", Text),  # null: same as request_body
    Column("response_body", Text),
    Column("attributes", JSON),
    Index("ix_requests_started", "started_at", "id"),
    Index("ix_requests_tenant_started", "tenant", "started_at"),
    Index("ix_requests_model_started", "request_model", "started_at"),
    Index("ix_requests_route_version_started", "route", "version", "started_at"),
    Index("ix_requests_route_started", "route", "started_at", "id"),  # 0013_console_speed
)


def session_columns() -> tuple[Column[Any], ...]:  # a Column belongs to one table
    return (
        Column("sessions_sketch", LargeBinary),
        Column("session_requests", Integer, nullable=False, server_default="0"),
        Column("session_cost_usd", Float, nullable=False, server_default="0"),
    )


def sli_columns() -> tuple[Column[Any], ...]:
    """What the negative-feedback and cost SLIs read (migration 0015_rollup_sli_columns),
    and the refusal SLI (0017_rollup_refusals)."""
    return (
        # the row's requests with negative feedback, each counted at its first one
        # (rollouts/feedback.py)
        Column("negative_feedback", Integer, nullable=False, server_default="0"),
        # DDSketch of each request's cost (zero or unknown: the zero bin); NULL on rows
        # written before the migration
        Column("cost_sketch", LargeBinary),
        # the row's requests whose response the model refused (a refusal finish reason,
        # types.is_refusal); NULL on rows written before migration 0017_rollup_refusals,
        # whose requests were not counted: the refusal SLI takes them in neither count
        Column("refused", Integer),
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
    # requests on which a guardrail fired (migration 0012_rollup_guardrails)
    Column("guardrail_fired", Integer, nullable=False, server_default="0"),
    # the HLL sketch of its session ids (NULL: no request had one), those requests' number
    # and spend (migration 0014_session_counts; telemetry/sessions.py)
    *session_columns(),
    *sli_columns(),  # migration 0015_rollup_sli_columns
    UniqueConstraint("minute", *ROLLUP_DIMENSIONS, name="uq_rollups_minute_dims"),
    Index("ix_rollups_minute", "minute"),
)

# -- hourly SLO rollups (issue 14, speed) ---------------------------------------------------

# the minute rollups of one closed hour (`hours` 1) or UTC day (24) summed per SLO
# dimensions (no provider), written by telemetry/hourly.py's compaction; read for an SLO's
# long windows
rollups_hour = Table(
    "rollups_hour",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hour", DateTime(timezone=True), nullable=False),  # the span's start
    Column("hours", Integer, nullable=False),  # 1 or 24
    Column("route", String(256), nullable=False),
    Column("model", String(256), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("feature", String(256), nullable=False),
    Column("version", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("latency_sketch", LargeBinary, nullable=False),
    Column("ttft_sketch", LargeBinary, nullable=False),
    # what the console shows besides (migration 0013_console_speed)
    Column("errors", Integer, nullable=False, server_default="0"),
    Column("input_tokens", Integer, nullable=False, server_default="0"),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("cost_usd", Float, nullable=False, server_default="0"),
    *session_columns(),  # as the minutes' (migration 0014_session_counts)
    *sli_columns(),  # as the minutes' (migration 0015_rollup_sli_columns)
    Column("guardrail_fired", Integer, nullable=False, server_default="0"),  # 0015 too
    Index("ix_rollups_hour_route", "route", "hours", "hour"),
    Index("ix_rollups_hour_hour", "hours", "hour"),
)

# an hour or day whose minute rollups changed since it was last compacted (or never was):
# its `rollups_hour` rows are not read; `seq` grows with each write into it
rollups_hour_dirty = Table(
    "rollups_hour_dirty",
    metadata,
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("hours", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
)

# -- the session-cost SLI's rollup (issue 14; migration 0016) --------------------------------

# one session's requests and spend per tenant, route and feature ("" for none), counted
# in the minute of its first request; the telemetry writer upserts it in its batch
# (telemetry/session_costs.py). `session_key` is a digest of tenant and session id, never
# the id itself
session_costs = Table(
    "session_costs",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("route", String(256), primary_key=True),
    Column("feature", String(256), primary_key=True),
    Column("session_key", String(32), primary_key=True),
    Column("first_minute", DateTime(timezone=True), nullable=False),
    Column("last_minute", DateTime(timezone=True), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    # the windows' reads: a range of first minutes, every column they test in the index
    Index("ix_session_costs_route_first", "route", "first_minute", "cost_usd", "tenant", "feature"),
    Index("ix_session_costs_first", "first_minute", "cost_usd", "tenant", "feature", "route"),
    Index("ix_session_costs_last", "last_minute"),  # retention
)
