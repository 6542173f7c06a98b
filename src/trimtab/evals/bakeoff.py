"""A bake-off's scorecard (pure): one suite's dataset run against several models or route
versions, a column each, and each column's verdicts against the first.

Per column: each scorer's mean and pass rate with their intervals (the run's summary,
evals/summary.py), p50/p95 latency (of every answered item; one reused from the cache at
its original call's), the error rate, the cost per item (the mean of the calls' recorded
costs) and per 1,000 items; for every column after the first, the paired comparison with
the first (evals/compare.py, through the API), or why there is none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Column:
    label: str  # the model, or the route version ("v2")
    run: Mapping[str, Any]  # the run's detail, with its summary
    results: Sequence[Mapping[str, Any]]
    comparison: Mapping[str, Any] | None = None  # against the first column
    comparison_error: str | None = None


def _cost(results: Sequence[Mapping[str, Any]]) -> dict[str, float | int | None]:
    costs = [float(r["cost_usd"]) for r in results if r.get("cost_usd") is not None]
    per_item = sum(costs) / len(costs) if costs else None
    return {
        "items": len(costs),
        "per_item": per_item,
        "per_1000": None if per_item is None else per_item * 1000,
        "total": sum(costs) if costs else None,
    }


def _latency(results: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """p50 and p95 over every answered item, a reused answer at its original call's."""
    values = [
        float(r["latency_ms"])
        for r in results
        if r.get("latency_ms") is not None and r.get("error") is None
    ]
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def _versus(column: Column) -> dict[str, Any] | None:
    if column.comparison is None:
        return None
    out: dict[str, Any] = {}
    for s in column.comparison.get("scorers", []):
        out[s["scorer"]] = {
            "verdict": s["verdict"],
            "difference": s["difference"],
            "interval": s["interval"],
            "p_adjusted": s["p_adjusted"],
            "n": s["n"],
        }
    return out


def scorecard(suite: str, columns: Sequence[Column]) -> dict[str, Any]:
    """The scorecard as one JSON document (the markdown and HTML render this)."""
    if not columns:
        raise ValueError("a bake-off needs at least one column")
    first = columns[0].run
    scorers = [s["scorer"] for s in first["summary"]["scorers"]]
    out_columns = []
    for column in columns:
        run, summary = column.run, column.run["summary"]
        items = int(run["items"])
        out_columns.append(
            {
                "label": column.label,
                "run": run["id"],
                "items": items,
                "errors": run["errors"],
                "error_rate": run["errors"] / items if items else None,
                "latency_ms": _latency(column.results),
                "cost_usd": _cost(column.results),
                "scorers": {
                    s["scorer"]: {
                        k: s[k]
                        for k in (
                            "scored",
                            "errors",
                            "mean",
                            "mean_interval",
                            "pass_rate",
                            "pass_rate_interval",
                        )
                    }
                    for s in summary["scorers"]
                },
                "versus_first": _versus(column),
                "versus_first_error": column.comparison_error,
                "outcome": None if column.comparison is None else column.comparison["outcome"],
            }
        )
    return {
        "suite": suite,
        "dataset": first["dataset"],
        "dataset_version": first["dataset_version"],
        "scorers": scorers,
        "columns": out_columns,
        "confidence": 0.95,
        "methods": {
            "mean": "BCa bootstrap",
            "pass_rate": "Wilson score",
            "versus_first": "paired by item: bootstrap interval of the difference, McNemar's "
            "exact test on pass/fail flips, Holm-corrected across scorers",
        },
    }
