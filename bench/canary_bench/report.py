"""The report: one scenario's rollouts as a job (for a pool of processes), and the Markdown
table of every scenario's outcome with its seed, sample size and intervals."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from canary_bench.outcome import (
    PAUSE,
    PROMOTE,
    ROLLBACK,
    UNDECIDED,
    Outcome,
    median_canary,
    median_hours,
    pct,
    share,
)
from canary_bench.route import LOOK_S, RATE
from canary_bench.scenarios import SCENARIOS
from canary_bench.simulation import simulate
from trimtab.canary.metrics import DEFAULT_METRICS, Metric, MetricSpec

BEFORE = "BEFORE item 1 (errors, refusals not required)"


def before_specs() -> tuple[MetricSpec, ...]:
    """The defaults before issue 12's item 1: errors and refusals only guarded, no margin."""
    out = []
    for s in DEFAULT_METRICS:
        if s.metric in (Metric.ERROR_RATE, Metric.REFUSAL_RATE):
            s = dataclasses.replace(s, required=False, margin=None)
        out.append(s)
    return tuple(out)


def run_scenario(job: tuple[int, int, int, bool]) -> tuple[int, int, Outcome, float]:
    """One job (scenario index, rollouts, seed, before): the index, the rollouts run, their
    outcome and the CPU seconds it took; the scenario's own seed is ``[seed, index]``."""
    index, rollouts, seed, before = job
    sc = SCENARIOS[index]
    n = min(rollouts, sc.max_rollouts or rollouts)
    rng = np.random.default_rng([seed, index])
    started = time.process_time()
    o = simulate(sc, n, rng, before_specs() if before else None)
    return index, n, o, time.process_time() - started


def render(
    results: Sequence[tuple[int, int, Outcome, float]],
    seed: int,
    before: bool,
    command: str,
    took_s: float,
) -> str:
    """The Markdown table of ``results`` and a note per scenario (the metrics that rolled
    it back, its looks and CPU), then the command and how long it took."""
    rows = []
    notes = []
    for index, n, o, cpu in results:
        sc = SCENARIOS[index]
        rb, pr, pa = (share(o, a) for a in (ROLLBACK, PROMOTE, PAUSE))
        und = share(o, UNDECIDED)
        rows.append(
            f"| {sc.name} | {n:,} | {seed} | {pct(rb)} | {pct(pr)} | {pct(pa)} "
            f"| {und[0]:.1%} | {median_canary(o, PROMOTE):,.0f} "
            f"| {median_canary(o, ROLLBACK):,.0f} "
            f"| {median_hours(o, PROMOTE):.2f} | {median_hours(o, ROLLBACK):.2f} |"
        )
        worst = sorted(o.by_metric.items(), key=lambda kv: -kv[1])
        notes.append(
            f"{sc.name}: rolled back by "
            + ", ".join(f"{k} {v:.1%}" for k, v in worst if v)
            + " (none)" * (not any(v for _, v in worst))
            + f"; {o.looks:,} looks; {cpu:.0f} s CPU"
        )
    return "\n".join(
        [
            f"Seed {seed}; rollouts per scenario in the table; shares with Wilson 95 % "
            f"intervals; {BEFORE if before else 'defaults'}"
            f"; a look every {LOOK_S:g} s at {RATE:g} requests/s unless the scenario says; "
            "canary requests over the whole rollout at the decision (median).",
            "",
            "| scenario | rollouts | seed | rolled back | promoted | paused | undecided "
            "| canary requests to promote | to roll back | hours to promote | to roll back |",
            "|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *[f"- {n}" for n in notes],
            f"- `{command}` took {took_s:.0f} s",
        ]
    )
