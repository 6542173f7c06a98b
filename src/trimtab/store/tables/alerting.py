"""What watches the service and pages: SLO definitions (slo/), budget crossings, alerts,
silences and the alert outbox (alerts/)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from trimtab.store.tables._metadata import metadata

# one row per SLO and scope (a tenant, or "" for an admin's); replaced by a new apply
slos = Table(
    "slos",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("definition", JSON, nullable=False),  # as an `slos:` entry, parsed again on read
    Column("digest", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(256)),
)

budget_events = Table(
    "budget_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("scope", String(300), nullable=False),  # "tenant:acme"
    Column("period", String(8), nullable=False),  # day | month
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("threshold", Float, nullable=False),  # 0.8, 1.0, 1.1
    Column("spent_usd", Float, nullable=False),
    Column("limit_usd", Float, nullable=False),
    Column("on_exceed", String(300), nullable=False),
    UniqueConstraint("scope", "period_start", "threshold", name="uq_budget_events_crossing"),
    Index("ix_budget_events_at", "at"),
)

# one alert per condition while it is open (issue 14): `open_key` is the dedup key until
# the alert resolves (then NULL), so one condition has one open alert across processes
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(256), nullable=False),
    Column("open_key", String(256)),
    Column("source", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # firing | acknowledged | resolved
    Column("summary", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Column("owner", String(256)),
    Column("on_call", String(256)),
    Column("silenced", Boolean, nullable=False),  # a silence matched when it opened
    Column("count", Integer, nullable=False),  # firing signals seen
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("acked_at", DateTime(timezone=True)),
    Column("acked_by", String(256)),
    Column("ack_comment", Text),
    Column("resolved_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    UniqueConstraint("open_key", name="uq_alerts_open_key"),
    Index("ix_alerts_state_started", "state", "started_at"),
)

# label matchers that suppress delivery until `ends_at` (an unsilence ends it now)
silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),  # [{label, op (= != =~), value}]
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
    Column("comment", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_silences_ends", "ends_at"),
)

# what each sink is to be told about an alert, delivered with retries by any process
alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("sink", String(128), nullable=False),
    Column("event", String(16), nullable=False),  # trigger | acknowledge | resolve
    Column("payload", JSON, nullable=False),  # the request body, built when enqueued
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True)),  # claimed by `leased_by` until then
    Column("leased_by", String(64)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ix_alert_outbox_due", "status", "next_attempt_at"),
    Index("ix_alert_outbox_alert", "alert_id", "sink"),
)
