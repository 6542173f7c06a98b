"""Evaluation (evals/): datasets and their immutable versions, suites, eval runs and their
results, the runs behind `eval` attestations, online scores and their rollups."""

from __future__ import annotations

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
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from trimtab.store.tables._metadata import metadata

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


# -- the eval-score SLI's rollups (issue 14; migration 0016; the suite's scope: 0019) --------

# the online scores of one minute, hour or UTC day of requests (`span` 1, 60 or 1440
# minutes from `minute`; the requests' time, not their scores') per suite (its scope and
# name, as in `online_scores`: a shared suite and a tenant's of one name keep their own
# rows), scorer and dimensions, one row per value bin: `bin` is the value in hundredths,
# floor(round(value * 100, 6)), 0-100; -1 holds the answers the scorer could not score
# (value null). `count` scores, `passed` of them the scorer's own pass. Written with
# `online_scores` in one transaction, into all three spans at once
# (evals/score_rollups.py), so the hours and days need no compaction
score_rollups = Table(
    "score_rollups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(128), nullable=False),  # the suite's: a tenant, "" for a shared one
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
        "scope",
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
