"""The schema, one definition for SQLite and PostgreSQL (migrations mirror it): every table
on the one `metadata`, in a module per domain, all re-exported here."""

from __future__ import annotations

from trimtab.store.tables._metadata import metadata
from trimtab.store.tables.access import api_keys, audit_log
from trimtab.store.tables.alerting import alert_outbox, alerts, budget_events, silences, slos
from trimtab.store.tables.evals import (
    dataset_items,
    dataset_version_items,
    dataset_versions,
    datasets,
    eval_attestations,
    eval_results,
    eval_runs,
    eval_suites,
    online_scores,
    score_rollups,
)
from trimtab.store.tables.incidents import (
    incident_events,
    incident_rules,
    incidents,
    model_switches,
)
from trimtab.store.tables.leases import leases
from trimtab.store.tables.routes import (
    attestations,
    feedback,
    rollouts,
    route_events,
    route_versions,
    routes,
)
from trimtab.store.tables.telemetry import (
    ROLLUP_DIMENSIONS,
    requests,
    rollups,
    rollups_hour,
    rollups_hour_dirty,
    session_columns,
    session_costs,
    sli_columns,
)

__all__ = [
    "ROLLUP_DIMENSIONS",
    "alert_outbox",
    "alerts",
    "api_keys",
    "attestations",
    "audit_log",
    "budget_events",
    "dataset_items",
    "dataset_version_items",
    "dataset_versions",
    "datasets",
    "eval_attestations",
    "eval_results",
    "eval_runs",
    "eval_suites",
    "feedback",
    "incident_events",
    "incident_rules",
    "incidents",
    "leases",
    "metadata",
    "model_switches",
    "online_scores",
    "requests",
    "rollouts",
    "rollups",
    "rollups_hour",
    "rollups_hour_dirty",
    "route_events",
    "route_versions",
    "routes",
    "score_rollups",
    "session_columns",
    "session_costs",
    "silences",
    "sli_columns",
    "slos",
]
