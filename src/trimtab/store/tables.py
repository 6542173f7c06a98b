"""The schema, one definition for SQLite and PostgreSQL (migrations mirror it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
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

# -- the route registry ------------------------------------------------------------------

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

# -- eval datasets -----------------------------------------------------------------------

# A dataset is named per tenant like a route: (scope, name), scope "" for a shared one.
datasets = Table(
    "datasets",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
)

# immutable: a version is its ordered items; the same content is never a second version
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("dataset", String(128), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),  # 1, 2, ... per dataset
    Column("digest", String(64), nullable=False),  # SHA-256 of the canonical item list
    Column("items", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Column("author", String(256)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["scope", "dataset"], ["datasets.scope", "datasets.name"]),
    UniqueConstraint("scope", "dataset", "digest", name="uq_dataset_versions_digest"),
)

# an item's content, stored once however many versions (or datasets) hold it
dataset_items = Table(
    "dataset_items",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the item's canonical JSON
    Column("body", JSON, nullable=False),
)

dataset_version_items = Table(
    "dataset_version_items",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("dataset", String(128), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("item_id", String(128), nullable=False),
    Column("item_digest", String(64), ForeignKey("dataset_items.digest"), nullable=False),
    ForeignKeyConstraint(
        ["scope", "dataset", "number"],
        ["dataset_versions.scope", "dataset_versions.dataset", "dataset_versions.number"],
    ),
)

# -- eval runs ----------------------------------------------------------------------------

# a run of one suite's pinned dataset version against a route version or a model
eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scope", String(128), nullable=False),  # the tenant that ran it
    Column("suite", String(128), nullable=False),
    Column("definition", JSON, nullable=False),  # the suite as it was run
    Column("dataset_scope", String(128), nullable=False),
    Column("dataset", String(128), nullable=False),
    Column("dataset_version", Integer, nullable=False),
    Column("route_scope", String(128)),
    Column("route", String(128)),
    Column("route_version", Integer),
    Column("model", String(256)),
    Column("target_digest", String(64), nullable=False),  # the version's digest, or the model's
    Column("items", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
    ForeignKeyConstraint(
        ["dataset_scope", "dataset", "dataset_version"],
        ["dataset_versions.scope", "dataset_versions.dataset", "dataset_versions.number"],
    ),
    Index("ix_eval_runs_scope_suite", "scope", "suite", "created_at"),
)

# one item's answer and scores in a run; written once (a resumed run skips it)
eval_results = Table(
    "eval_results",
    metadata,
    Column("run_id", String(40), ForeignKey("eval_runs.id"), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("scope", String(128), nullable=False),
    Column("target_digest", String(64), nullable=False),
    Column("request_digest", String(64), nullable=False),  # SHA-256 of the body sent
    Column("output", Text),
    Column("error", Text),  # the call failed: no output, no scores
    Column("scores", JSON, nullable=False),  # scorer -> {value, passed, reason} | {error}
    Column("latency_ms", Float),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cost_usd", Float),
    Column("request_id", String(40)),  # the gateway's record of the call
    Column("cached", Boolean, nullable=False),  # reused from an earlier run: no call
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_eval_results_cache", "scope", "target_digest", "request_digest"),
)

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

# -- leases ---------------------------------------------------------------------------------

# one row per named lease (say "slo-evaluator"): who holds it and until when (store/leases.py)
leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),  # this holder's first
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Column("epoch", Integer, nullable=False),  # +1 each time another holder takes it over
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

# -- eval suites and run-backed attestations -----------------------------------------------

# one row per suite and scope (a tenant, or "" for an admin's); replaced by a new apply
eval_suites = Table(
    "eval_suites",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("route", String(128)),  # null: the suite runs a plain model
    Column("tags", JSON, nullable=False),  # e.g. ["golden"]; the release gate reads them
    Column("definition", JSON, nullable=False),  # as an `evals:` entry, parsed again on read
    Column("digest", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(256)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(256)),
    Index("ix_eval_suites_route", "scope", "route"),
)

# the eval run an `eval` attestation was written from (`eval run --gate`): one row each
eval_attestations = Table(
    "eval_attestations",
    metadata,
    Column("attestation_id", Integer, ForeignKey("attestations.id"), primary_key=True),
    Column("run_id", String(40), ForeignKey("eval_runs.id"), nullable=False),
    Column("baseline_run_id", String(40), ForeignKey("eval_runs.id")),
    Column("suite", String(128), nullable=False),
    Column("tags", JSON, nullable=False),  # the suite's tags when the run was made
    Column("dataset", String(128), nullable=False),
    Column("dataset_version", Integer, nullable=False),
    Column("target_digest", String(64), nullable=False),  # the version's digest the run called
    Column("verdict", String(16), nullable=False),  # pass | fail
)

# one scorer's score of one sampled production answer (an applied suite's `online:`),
# keyed by the suite (scope and name: migration 0018) as well as the scorer, so two suites
# with a scorer of the same name each keep their score of a request
online_scores = Table(
    "online_scores",
    metadata,
    Column("request_id", String(40), nullable=False),
    Column("scorer", String(64), nullable=False),
    Column("suite", String(128), nullable=False),
    Column("scope", String(128), nullable=False),  # the suite's
    Column("tenant", String(128), nullable=False),  # the request's
    Column("route", String(256), nullable=False),
    Column("version", String(64)),
    Column("value", Float),  # in [0, 1]; null: the scorer could not score it
    Column("passed", Boolean),
    Column("reason", Text),
    Column("request_at", DateTime(timezone=True), nullable=False),  # the request's start
    Column("scored_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("request_id", "scope", "suite", "scorer", name="online_scores_pkey"),
    Index("ix_online_scores_route_time", "route", "version", "request_at"),
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


# -- the eval-score and session-cost SLIs' rollups (issue 14; migration 0016) ---------------

# the online scores of one minute, hour or UTC day of requests (`span` 1, 60 or 1440
# minutes from `minute`; the requests' time, not their scores') per suite, scorer and
# dimensions, one row per value bin: `bin` is the value in hundredths,
# floor(round(value * 100, 6)), 0-100; -1 holds the answers the scorer could not score
# (value null). `count` scores, `passed` of them the scorer's own pass. Written with
# `online_scores` in one transaction, into all three spans at once
# (evals/score_rollups.py), so the hours and days need no compaction
score_rollups = Table(
    "score_rollups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("suite", String(128), nullable=False),
    Column("scorer", String(64), nullable=False),
    Column("span", Integer, nullable=False),
    Column("minute", DateTime(timezone=True), nullable=False),  # the span's first
    Column("route", String(256), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("version", String(64), nullable=False),  # "" for none
    Column("bin", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    # the key leads with what every read names, then the span's start: a range scan
    UniqueConstraint(
        "suite",
        "scorer",
        "span",
        "minute",
        "route",
        "tenant",
        "version",
        "bin",
        name="uq_score_rollups",
    ),
    Index("ix_score_rollups_minute", "minute"),  # retention
)

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
