"""Incidents (incidents/): their records, timelines and the rules they bought; and the
model switches that contain one (gateway/switches.py)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from trimtab.store.tables._metadata import metadata

# -- incidents (issue 14) ---------------------------------------------------------------

# An incident belongs to a scope like an SLO: the tenant that opened it, or "" (an admin's,
# or one opened from an alert without a tenant). `open_dedup_key` is the alert's dedup key
# while the incident is open or mitigated (NULL after), so a second page for the same
# condition attaches to it instead of opening another, even from another process.
incidents = Table(
    "incidents",
    metadata,
    Column("id", String(40), primary_key=True),  # "inc_" + 16 hex digits
    Column("scope", String(128), nullable=False),
    Column("title", String(512), nullable=False),
    Column("type", String(32), nullable=False),  # incidents/model.py INCIDENT_TYPES
    Column("severity", Integer, nullable=False),  # 1 (worst) .. 4
    Column("customer_impact", String(16), nullable=False),  # low | medium | high | critical
    Column("state", String(16), nullable=False),  # open | mitigated | resolved | closed
    Column("routes", JSON, nullable=False),
    Column("models", JSON, nullable=False),
    Column("tenants", JSON, nullable=False),
    Column("summary", Text),
    Column("opened_by", String(256)),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("first_bad_at", DateTime(timezone=True)),  # from the rollups
    Column("detected_at", DateTime(timezone=True), nullable=False),  # the alert, or opening
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("mitigated_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("dedup_key", String(256)),  # the alert that opened it, if one did
    Column("open_dedup_key", String(256)),
    Column("postmortem", Text),  # the markdown recorded last
    Column("postmortem_at", DateTime(timezone=True)),
    UniqueConstraint("open_dedup_key", name="uq_incidents_open_dedup_key"),
    Index("ix_incidents_scope_opened", "scope", "opened_at"),
)

# append-only: what happened within the incident (opened, alerts, notes, actions, states)
incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(40), ForeignKey("incidents.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(256)),
    Column("message", Text),
    Column("detail", JSON),
    Index("ix_incident_events_incident", "incident_id", "id"),
)

# the reusable rules an incident bought: an SLO, a guardrail, a limit, a dataset case, a gate
incident_rules = Table(
    "incident_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(40), ForeignKey("incidents.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ref", String(512), nullable=False),
    Column("message", Text, nullable=False),
    Column("detail", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
    Index("ix_incident_rules_incident", "incident_id", "id"),
)

# -- model switches ---------------------------------------------------------------------

# a model switched to its fallbacks by an operator (an incident's containment): while its
# row exists every gateway skips the model and serves its `fallbacks:` (gateway/switches.py)
model_switches = Table(
    "model_switches",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("actor", String(256)),
    Column("incident_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
