"""What a run's results add up to (pure): per scorer the mean score with its BCa bootstrap
interval and the pass rate with its Wilson interval (both from `stats`), the items that
errored, and the latency and tokens of the calls; and the scores `compare.compare_runs`
pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trimtab.evals.compare import ItemScore, RunScores
from trimtab.evals.judge import consistency
from trimtab.evals.runs import Result
from trimtab.stats.paired import bca_interval
from trimtab.stats.proportions import wilson_interval

CONFIDENCE = 0.95
# a run's summary is computed on every read of the run: with 2,000 resamples the BCa
# interval's ends moved by at most 0.003 from seed to seed here (200 scores in [0, 1]),
# against 0.002 with 9,999, and two scorers over 10,000 items took 0.5 s instead of 1.7 s
SUMMARY_RESAMPLES = 2000


def item_score(result: Result | None, scorer: str) -> ItemScore | None:
    """A scorer's score of one item; None when the item has no result, its call failed or
    the scorer could not score it."""
    if result is None or result.error is not None:
        return None
    score = result.scores.get(scorer)
    if score is None or "error" in score:
        return None
    return ItemScore(float(score["value"]), bool(score["passed"]))


def run_scores(
    scorers: Sequence[str], items: Sequence[str], results: Mapping[str, Result]
) -> RunScores:
    return {s: {i: item_score(results.get(i), s) for i in items} for s in scorers}


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(
    scorers: Sequence[str],
    items: Sequence[str],
    results: Mapping[str, Result],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """The run's aggregates over the dataset's `items` (ids, in order)."""
    out = []
    for name in scorers:
        scored = [s for i in items if (s := item_score(results.get(i), name)) is not None]
        failed = [
            i
            for i in items
            if (r := results.get(i)) is not None
            and r.error is None
            and "error" in r.scores.get(name, {"error": ""})
        ]
        values = np.array([s.value for s in scored], dtype=np.float64)
        passes = sum(s.passed for s in scored)
        mean = float(values.mean()) if scored else None
        interval: list[float] | None = None
        if len(scored) >= 2:
            rng = np.random.default_rng(seed)
            interval = list(bca_interval(values, CONFIDENCE, SUMMARY_RESAMPLES, rng))
        low, high = wilson_interval(passes, len(scored))
        judged = [
            sc["judge"]
            for i in items
            if (r := results.get(i)) is not None
            and isinstance(sc := r.scores.get(name), dict)
            and isinstance(sc.get("judge"), dict)
        ]
        extra = {"judge_consistency": consistency(judged)} if judged else {}
        out.append(
            {
                **extra,
                "scorer": name,
                "scored": len(scored),
                "errors": len(failed),
                "mean": mean,
                "mean_interval": interval,
                "pass_rate": passes / len(scored) if scored else None,
                "pass_rate_interval": [low, high] if scored else None,
                "method": "mean: BCa bootstrap; pass rate: Wilson score interval",
                "confidence": CONFIDENCE,
            }
        )
    done = [results[i] for i in items if i in results]
    latencies = [r.latency_ms for r in done if r.latency_ms is not None and not r.cached]
    return {
        "scorers": out,
        "failed_items": [r.item_id for r in done if r.error is not None],
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        "input_tokens": sum(r.input_tokens or 0 for r in done),
        "output_tokens": sum(r.output_tokens or 0 for r in done),
    }
