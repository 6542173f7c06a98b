"""The route registry (registry/): routes, their immutable versions and their timeline;
and what a rollout of a version reads and writes (rollouts/): rollouts, attestations,
feedback."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from trimtab.store.tables._metadata import metadata

# A route is a named LLM feature; what it serves is one of its versions. Its identity is
# (scope, name): scope is the tenant that owns it, or "" for a route shared by every
# tenant, so two tenants may each have a route of the same name (issue 8, item 6).

routes = Table(
    "routes",
    metadata,
    Column("scope", String(128), primary_key=True),  # the owning tenant; "": shared
    Column("name", String(128), primary_key=True),
    Column("owner", String(256), nullable=False),  # who is paged, who approves
    Column("risk_tier", Integer, nullable=False),  # 0 (internal) .. 3 (regulated)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("stable_version", Integer),  # the number of the version the gateway serves
    Column("previous_stable_version", Integer),  # pinned: where a rollback returns to
    Column("storage_bodies", String(16)),  # the route's storage.bodies; null: none of its own
    Index("ix_routes_name", "name"),
)


def _route_key() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["scope", "route"], ["routes.scope", "routes.name"])


# immutable: rows are inserted, never updated or deleted
route_versions = Table(
    "route_versions",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("route", String(128), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),  # 1, 2, ... per route
    Column("digest", String(64), nullable=False),  # SHA-256 of the canonical bundle JSON
    Column("bundle", JSON, nullable=False),
    Column("author", String(256)),  # the owner of the key that applied it
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("parent", Integer),  # the route's newest version when this one was applied
    _route_key(),
    Index("ix_route_versions_digest", "digest"),
)

# append-only: the timeline of a route (apply, promote, rollback, rollout stages, ...)
route_events = Table(
    "route_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(128), nullable=False),
    Column("route", String(128), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("version", Integer),
    Column("actor", String(256)),
    Column("reason", Text),
    Column("detail", JSON),
    _route_key(),
    Index("ix_route_events_route", "scope", "route", "id"),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scope", String(128), nullable=False),
    Column("route", String(128), nullable=False),
    Column("stable_version", Integer, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("plan_name", String(64), nullable=False),
    Column("plan", JSON, nullable=False),
    Column("stage", Integer, nullable=False),  # index into the plan's stages
    # when the current stage's clock started (a resume restarts it)
    Column("stage_started_at", DateTime(timezone=True), nullable=False),
    # ISO times at which each stage so far began: the analysis windows
    Column("stage_starts", JSON),
    # running | paused | promoted | rolled_back | aborted
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("started_by", String(256)),
    Column("ended_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("last_decision", JSON),
    _route_key(),
    Index("ix_rollouts_route_status", "scope", "route", "status"),
)

attestations = Table(
    "attestations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(128), nullable=False),
    Column("route", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # eval | redteam | approval | changelog
    Column("result", String(8), nullable=False),  # pass | fail
    Column("by", String(256), nullable=False),  # the owner of the key that attested
    Column("note", Text),
    Column("url", String(1024)),
    Column("at", DateTime(timezone=True), nullable=False),
    _route_key(),
    Index("ix_attestations_route_version", "scope", "route", "version"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("route", String(256)),
    Column("version", String(64)),
    Column("score", Float, nullable=False),  # 0 (bad) .. 1 (good); thumbs down = 0
    Column("negative", Boolean, nullable=False),
    Column("comment", Text),
    Column("escalated", Boolean, nullable=False),
    Column("by", String(256)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_feedback_route_version", "route", "version"),
    Index("ix_feedback_request", "request_id"),
)
