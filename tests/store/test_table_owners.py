"""Each table is written only by the package that owns it (docs/architecture.md, "Who owns
the queries"): another package reads it, or asks the owner's functions to change it."""

from __future__ import annotations

import re
from pathlib import Path

from trimtab.store.tables import metadata

SRC = Path(__file__).resolve().parents[2] / "src" / "trimtab"

OWNERS = {
    "requests": "telemetry",
    "rollups_minute": "telemetry",
    "rollups_hour": "telemetry",  # telemetry/hourly.py compacts; slo/windows.py reads
    "rollups_hour_dirty": "telemetry",
    "api_keys": "auth",
    "audit_log": "audit",
    "budget_events": "alerts",
    "alerts": "alerts",
    "silences": "alerts",
    "alert_outbox": "alerts",
    "routes": "registry",
    "route_versions": "registry",
    "route_events": "registry",
    "rollouts": "rollouts",
    "attestations": "rollouts",
    "feedback": "rollouts",
    "datasets": "evals",
    "dataset_versions": "evals",
    "dataset_items": "evals",
    "dataset_version_items": "evals",
    "eval_runs": "evals",
    "eval_results": "evals",
    "slos": "slo",
    "incidents": "incidents",
    "incident_events": "incidents",
    "incident_rules": "incidents",
    "leases": "store",  # store/leases.py, for any package that needs one holder
    "eval_suites": "evals",
    "eval_attestations": "rollouts",
    "online_scores": "evals",
    "model_switches": "gateway",  # gateway/switches.py: a model switched to its fallbacks
    "score_rollups": "evals",  # evals/score_rollups.py; slo/score_reads.py reads
    "session_costs": "telemetry",  # telemetry/session_costs.py; slo/session_cost_reads.py reads
}
# the Python names store/tables/ gives them, where they differ
VARIABLES = {"rollups_minute": "rollups"}


def writes(table: str) -> set[str]:
    """The packages whose modules insert into, update or delete from `table`."""
    name = re.escape(VARIABLES.get(table, table))
    pattern = re.compile(
        rf"\b(?:insert|update|delete)\({name}\)|\b{name}\.(?:insert|update|delete)\("
    )
    found = set()
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if relative.parts[0] in ("store", "testing") or len(relative.parts) == 1:
            continue
        if pattern.search(path.read_text()):
            found.add(relative.parts[0])
    return found


def test_every_table_has_an_owner() -> None:
    assert set(OWNERS) == set(metadata.tables)


def test_only_the_owner_writes_a_table() -> None:
    wrong = {
        table: sorted(writes(table) - {owner})
        for table, owner in OWNERS.items()
        if writes(table) - {owner}
    }
    assert wrong == {}


def test_the_check_sees_writes() -> None:
    assert writes("requests") == {"telemetry"}
    assert writes("routes") == {"registry"}
