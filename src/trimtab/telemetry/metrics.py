"""Prometheus metrics of one gateway, in a registry of its own.

Every label value comes from the configuration: a name a client sends (a model that is not
configured, a tenant that exists only in the store) is counted under `other`, so no client
can add series to this process or to the scrapers' memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from trimtab.config import Config
from trimtab.telemetry.record import RequestRecord

OTHER = "other"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class LabelValues:
    """The values the `model`, `provider` and `tenant` labels may take; the rest is `other`."""

    def __init__(
        self, models: Iterable[str] = (), providers: Iterable[str] = (), tenants: Iterable[str] = ()
    ) -> None:
        self.models = frozenset(models)
        self.providers = frozenset(providers)
        # "default" is the tenant of open access and of requests refused before a key is known
        self.tenants = frozenset(tenants) | {"default"}

    @classmethod
    def from_config(cls, config: Config) -> LabelValues:
        """Configured models and providers, and the tenants of the config file's keys.

        Keys created through the API may name any tenant, so their tenants count as
        `other` here; /api/metrics/summary?group_by=tenant has each of them."""
        return cls(config.models, config.providers, (k.tenant for k in config.keys or ()))

    def model(self, name: str | None) -> str:
        return name if name in self.models else OTHER

    def provider(self, name: str | None) -> str:
        if name is None:
            return ""  # refused before a provider was chosen
        return name if name in self.providers else OTHER

    def tenant(self, name: str) -> str:
        return name if name in self.tenants else OTHER


@dataclass(frozen=True, slots=True, eq=False)
class _Labels:
    """One combination of label values, and its children of the per-record series."""

    model: str
    provider: str
    tenant: str
    requests: Any
    duration: Any


class GatewayMetrics:
    """Request, token, cost and telemetry-pipeline metrics."""

    def __init__(self, labels: LabelValues | None = None) -> None:
        self.label_values = labels or LabelValues()
        # labelled children by their (bounded) label values: `.labels()` costs about 1 µs
        self._children: dict[tuple[object, ...], Any] = {}
        self._seen: dict[tuple[str, str, str, int], _Labels] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "trimtab_requests",
            "Requests that reached a model endpoint.",
            ["model", "provider", "tenant", "status_code"],
            registry=r,
        )
        self.duration = Histogram(
            "trimtab_request_duration_seconds",
            "Total request latency as the client saw it.",
            ["model", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "trimtab_time_to_first_token_seconds",
            "Time to the first streamed token.",
            ["model", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "trimtab_overhead_seconds",
            "Time trimtab itself spent on a request.",
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "trimtab_tokens", "Tokens by direction.", ["model", "tenant", "direction"], registry=r
        )
        self.cost = Counter("trimtab_cost_usd", "Spend in USD.", ["model", "tenant"], registry=r)
        self.recorded = Counter(
            "trimtab_telemetry_recorded", "Request records committed to the store.", registry=r
        )
        self.spilled = Counter(
            "trimtab_telemetry_spilled", "Request records written to the spill file.", registry=r
        )
        self.write_errors = Counter(
            "trimtab_telemetry_write_errors", "Failed store writes (retried).", registry=r
        )
        self.queue_depth = Gauge(
            "trimtab_telemetry_queue_depth", "Records waiting for the writer.", registry=r
        )
        self.attempts = Counter(
            "trimtab_upstream_attempts",
            "Calls to a deployment, by outcome (ok or the error class).",
            ["deployment", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter(
            "trimtab_fallbacks",
            "Requests served by a fallback model.",
            ["model", "fallback"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "trimtab_breaker_open",
            "1 while a deployment's breaker is open.",
            ["deployment"],
            registry=r,
        )
        self.breaker_trips = Counter(
            "trimtab_breaker_trips",
            "Times a deployment's breaker opened.",
            ["deployment"],
            registry=r,
        )
        self.cache = Counter(
            "trimtab_cache", "Response cache lookups by result.", ["model", "result"], registry=r
        )
        self.store_up = Gauge("trimtab_store_up", "1 when the last store write worked.", registry=r)
        # route: "" for plain model calls; route names are the registry's, not the client's
        self.guardrail_checks = Counter(
            "trimtab_guardrail_checks",
            "Guardrail checks run by check and outcome (pass redact block flag shadow error).",
            ["check", "outcome", "route"],
            registry=r,
        )
        self.store_up.set(1)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(lambda: float(depth()))

    def observe(self, record: RequestRecord) -> None:
        self.observe_all((record,))

    def observe_all(self, records: Iterable[RequestRecord]) -> None:
        """Count the records: a histogram observation each, and the counters once per
        combination of label values (their sums), through children looked up once."""
        sums: dict[_Labels, list[float]] = {}
        overhead = self.overhead.observe
        child = self._child
        for record in records:
            labels = self._labels_of(record)
            labels.duration.observe(record.duration_ms / 1000)
            if record.ttft_ms is not None:
                child(self.ttft, labels.model, labels.provider).observe(record.ttft_ms / 1000)
            overhead(record.overhead_ms / 1000)
            total = sums.get(labels)
            if total is None:
                total = sums[labels] = [0, 0, 0, 0.0]
            total[0] += 1
            total[1] += record.input_tokens or 0
            total[2] += record.output_tokens or 0
            total[3] += record.cost_usd or 0.0
        for labels, (count, tokens_in, tokens_out, cost) in sums.items():
            labels.requests.inc(count)
            # series with a token or a cent only, as when each record was counted alone
            if tokens_in:
                child(self.tokens, labels.model, labels.tenant, "input").inc(tokens_in)
            if tokens_out:
                child(self.tokens, labels.model, labels.tenant, "output").inc(tokens_out)
            if cost:
                child(self.cost, labels.model, labels.tenant).inc(cost)

    def _labels_of(self, record: RequestRecord) -> _Labels:
        """The record's bounded label values and the children every record uses, kept per
        combination: at most the combinations of configured names (and `other`) seen."""
        values = self.label_values
        key = (
            values.model(record.request_model),
            values.provider(record.provider),
            values.tenant(record.tenant),
            record.status_code,
        )
        found = self._seen.get(key)
        if found is None:
            model, provider, tenant, status = key
            found = self._seen[key] = _Labels(
                model,
                provider,
                tenant,
                self.requests.labels(model, provider, tenant, str(status)),
                self._child(self.duration, model, provider),
            )
        return found

    def count_guardrail_check(self, check: str, outcome: str, route: str) -> None:
        """One guardrail check run; its counter child remembered (checks, outcomes and
        routes are few)."""
        self._child(self.guardrail_checks, check, outcome, route).inc()

    def _child(self, family: Any, *values: str) -> Any:
        """`family.labels(*values)`, remembered; the values are already bounded."""
        key = (id(family), *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*values)
        return found

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
