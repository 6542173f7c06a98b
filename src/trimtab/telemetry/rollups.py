"""Per-minute rollups: fold request records into mergeable aggregates, and read them back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ddsketch import DDSketch

from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.sessions import add_session, new_sessions, union_of
from trimtab.telemetry.sketch import new_sketch, quantile
from trimtab.types import is_refusal

# (minute, model, provider, tenant, feature, status_code, route, version)
RollupKey = tuple[datetime, str, str, str, str, int, str, str]

GROUPABLE = {
    "model": 1,
    "provider": 2,
    "tenant": 3,
    "feature": 4,
    "status": 5,
    "route": 6,
    "version": 7,
}


@dataclass(slots=True)
class Rollup:
    """Counts, tokens, cost and latency sketches of a set of requests; `guardrail_fired`
    counts those on which a guardrail fired (`attributes.guardrails.fired` not empty);
    `sessions` is the HLL sketch of the session ids of those that carry one (None: none
    did; telemetry/sessions.py), `session_requests` and `session_cost_usd` their number
    and spend; `cost` the sketch of each request's cost (an unknown cost is 0, as in
    `cost_usd`: the zero bin), the cost SLI's; `refused` counts those whose response the
    model refused (a refusal finish reason, types.is_refusal), the refusal SLI's."""

    count: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency: DDSketch = field(default_factory=new_sketch)
    ttft: DDSketch = field(default_factory=new_sketch)
    guardrail_fired: int = 0
    cost: DDSketch = field(default_factory=new_sketch)
    sessions: Any = None
    session_requests: int = 0
    session_cost_usd: float = 0.0
    refused: int = 0

    def add(self, record: RequestRecord) -> None:
        self.count += 1
        if record.session:
            if self.sessions is None:
                self.sessions = new_sessions()
            add_session(self.sessions, record.tenant, record.session)
            self.session_requests += 1
            self.session_cost_usd += record.cost_usd or 0.0
        if record.is_error:
            self.errors += 1
        if record.attributes and fired(record.attributes):
            self.guardrail_fired += 1
        if is_refusal(record.finish_reasons):
            self.refused += 1
        self.input_tokens += record.input_tokens or 0
        self.output_tokens += record.output_tokens or 0
        self.cost_usd += record.cost_usd or 0.0
        self.cost.add(max(record.cost_usd or 0.0, 0.0))
        self.latency.add(max(record.duration_ms, 0.0))
        if record.ttft_ms is not None:
            self.ttft.add(max(record.ttft_ms, 0.0))

    def merge(self, other: Rollup) -> None:
        self.count += other.count
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.guardrail_fired += other.guardrail_fired
        self.refused += other.refused
        if other.latency.count:
            self.latency.merge(other.latency)
        if other.ttft.count:
            self.ttft.merge(other.ttft)
        if other.cost.count:
            self.cost.merge(other.cost)
        self.sessions = union_of(self.sessions, other.sessions)
        self.session_requests += other.session_requests
        self.session_cost_usd += other.session_cost_usd

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "error_rate": self.errors / self.count if self.count else 0.0,
            "latency_ms": {
                "p50": quantile(self.latency, 0.5),
                "p95": quantile(self.latency, 0.95),
                "p99": quantile(self.latency, 0.99),
            },
            "ttft_ms": {
                "p50": quantile(self.ttft, 0.5),
                "p95": quantile(self.ttft, 0.95),
                "p99": quantile(self.ttft, 0.99),
            },
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 10),
        }


def fired(attributes: dict[str, Any]) -> bool:
    """Whether a record's attributes say a guardrail fired on it (gateway/guarding.py)."""
    guardrails = attributes.get("guardrails")
    return isinstance(guardrails, dict) and bool(guardrails.get("fired"))


def minute_of(epoch_s: float) -> datetime:
    whole = int(epoch_s // 60) * 60
    return datetime.fromtimestamp(whole, UTC)


def key_of(record: RequestRecord) -> RollupKey:
    return (
        minute_of(record.started_at),
        record.request_model or "",
        record.provider or "",
        record.tenant,
        record.feature or "",
        record.status_code,
        record.route or "",
        record.version or "",
    )


def fold(records: Iterable[RequestRecord]) -> dict[RollupKey, Rollup]:
    """Aggregate records by minute and dimensions."""
    out: dict[RollupKey, Rollup] = {}
    for record in records:
        key = key_of(record)
        rollup = out.get(key)
        if rollup is None:
            rollup = out[key] = Rollup()
        rollup.add(record)
    return out


def group(rows: Iterable[tuple[RollupKey, Rollup]], group_by: str) -> list[dict[str, Any]]:
    """Merge rollup rows into one summary per value of a dimension, largest first."""
    index = GROUPABLE[group_by]
    merged: dict[Any, Rollup] = {}
    for key, rollup in rows:
        value = key[index]
        target = merged.get(value)
        if target is None:
            target = merged[value] = Rollup()
        target.merge(rollup)
    out = []
    for value, rollup in merged.items():
        label: Any = value if value != "" else None
        out.append({group_by: label, **rollup.summary()})
    out.sort(key=lambda g: (-g["count"], str(g[group_by])))
    return out
