"""trimtab's /metrics parsed, summed and digested for the soak's samples."""

from __future__ import annotations

import contextlib
import re
from typing import Any

_PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """metric name -> {label string: value} from the Prometheus text format."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if m is None:
            continue
        with contextlib.suppress(ValueError):
            out.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
    return out


def metric_sum(metrics: dict[str, dict[str, float]], name: str) -> float | None:
    values = metrics.get(name)
    return sum(values.values()) if values else None


def metrics_digest(metrics: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The /metrics values the report shows."""

    def by_label(name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in metrics.get(name, {}).items():
            m = re.search(label + r'="([^"]*)"', labels)
            key = m.group(1) if m else labels
            out[key] = out.get(key, 0.0) + value
        return out

    return {
        "queue_depth": metric_sum(metrics, "trimtab_telemetry_queue_depth"),
        "recorded": metric_sum(metrics, "trimtab_telemetry_recorded_total"),
        "spilled": metric_sum(metrics, "trimtab_telemetry_spilled_total"),
        "write_errors": metric_sum(metrics, "trimtab_telemetry_write_errors_total"),
        "store_up": metric_sum(metrics, "trimtab_store_up"),
        "breaker_open": by_label("trimtab_breaker_open", "deployment"),
        "breaker_trips": by_label("trimtab_breaker_trips_total", "deployment"),
        "fallbacks": metric_sum(metrics, "trimtab_fallbacks_total"),
        "attempts": by_label("trimtab_upstream_attempts_total", "outcome"),
        "cache": by_label("trimtab_cache_total", "result"),
        "policy_refusals": by_label("trimtab_policy_refusals_total", "code"),
        "policy_state_errors": metric_sum(metrics, "trimtab_policy_state_errors_total"),
    }
