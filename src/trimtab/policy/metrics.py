"""The policy's Prometheus counters: refusals, downgrades, shared-state failures."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class PolicyMetrics:
    """The counters, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refusals = Counter(
            "trimtab_policy_refusals",
            "Requests refused by a rate limit or a budget.",
            ["code"],
            registry=registry,
        )
        self.downgrades = Counter(
            "trimtab_budget_downgrades",
            "Requests served by a cheaper model because a budget was spent.",
            ["model", "to"],
            registry=registry,
        )
        self.state_errors = Counter(
            "trimtab_policy_state_errors",
            "Shared-state calls that failed; the policy let the request through (fail open).",
            registry=registry,
        )
