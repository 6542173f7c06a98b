"""Canary analysis, simulated through the controller's own decision path.

Each simulated rollout runs a plan's stages (the default plan: 1 -> 5 -> 25 -> 50 -> 100 %)
over simulated traffic, and at every look — every ``LOOK_S`` seconds of route traffic, as
the controller's tick — judges it exactly as ``trimtab.rollouts.controller`` does: one
window per stage so far, the latency tests against stable's quantile pooled over those
windows (``analysis.pooled_quantile`` on DDSketch-like buckets of 2 % width, counted the
way ``SketchLatency`` counts them), every metric's verdict from ``analysis.evidence`` (the
function ``analyze()`` takes its verdicts from), then the controller's stage rule: any
regression rolls back; a stage past its minimums advances, or promotes when the next step
is 100 % and every required metric has passed; a stage still waiting at its maximum pauses,
and a paused rollout is still judged (a regression rolls it back) until the horizon. With
sticky users the error, latency and cost tests get the design effect of the rollout's users
(``stats.clustered.design_effect``: of the errors, the log latency and the cost per user),
as the controller does from the per-user counts and sums.
Where a scenario scores a share of answers online, each scored answer gets a score in
[0, 1] (Beta, mean 0.8, or pass/fail) and ``quality_score`` is judged on them.

Rollouts are vectorised with numpy: every look of every rollout is one row of an array.

    .venv/bin/python bench/canary_sim.py                      # 1,000 rollouts per scenario
    .venv/bin/python bench/canary_sim.py --rollouts 200       # quicker
    .venv/bin/python bench/canary_sim.py --only healthy --seed 2
    .venv/bin/python bench/canary_sim.py --only sticky --without slower
    .venv/bin/python bench/canary_sim.py --before             # errors/refusals not required

Every figure is printed with the seed and the number of rollouts it comes from, and a
Wilson 95 % interval for each share. Writes Markdown to stdout and to
``bench/results/canary_sim.md``.

Its parts are modules of bench/canary_bench/: the simulated route (route.py), the
scenarios (scenarios.py), the latency buckets (sketch.py), each look's requests and the
arms' counters (traffic.py), sticky users (users.py), their design effect and CUPED
(clustering.py), the controller's judgement and stage rule (judgement.py), the loop
(simulation.py), the outcome (outcome.py) and the report (report.py); this file is the
command.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # loaded by path (tests/canary/test_simulation.py)
    sys.path.insert(0, str(BENCH_DIR))

from canary_bench.outcome import PAUSE, PROMOTE, ROLLBACK, UNDECIDED, Outcome  # noqa: E402
from canary_bench.report import BEFORE, before_specs, render, run_scenario  # noqa: E402
from canary_bench.route import (  # noqa: E402
    COST_MEAN,
    COST_SIGMA,
    ERROR_RATE,
    FEEDBACK_SHARE,
    LATENCY_MEDIAN_MS,
    LATENCY_SIGMA,
    LOOK_S,
    NEGATIVE_RATE,
    QUALITY_CONCENTRATION,
    QUALITY_MEAN,
    RATE,
)
from canary_bench.scenarios import (  # noqa: E402
    ADJUST,
    ADJUSTED,
    EVERY_REQUEST,
    FIRST_SEEN,
    HEAVY_ERR_MORE,
    ONE_TO_99,
    QUALITY_REQUIRED,
    SCENARIOS,
    SLOWER,
    SLOWER_ADJUSTED,
    SLOWER_NAME,
    TIER_1,
    TIER_1_EARLY,
    TWO_A_MINUTE,
    Scenario,
)
from canary_bench.simulation import simulate  # noqa: E402
from canary_bench.sketch import BUCKETS, GAMMA, KEY_HI, KEY_LO, Array, Histograms  # noqa: E402

RESULTS = BENCH_DIR / "results"

# what this script offered before its parts moved to bench/canary_bench/ (the tests use
# Scenario, simulate, ROLLBACK, PROMOTE and SLOWER; docs/canary.md names simulate)
__all__ = [
    "ADJUST",
    "ADJUSTED",
    "BEFORE",
    "BUCKETS",
    "COST_MEAN",
    "COST_SIGMA",
    "ERROR_RATE",
    "EVERY_REQUEST",
    "FEEDBACK_SHARE",
    "FIRST_SEEN",
    "GAMMA",
    "HEAVY_ERR_MORE",
    "KEY_HI",
    "KEY_LO",
    "LATENCY_MEDIAN_MS",
    "LATENCY_SIGMA",
    "LOOK_S",
    "NEGATIVE_RATE",
    "ONE_TO_99",
    "PAUSE",
    "PROMOTE",
    "QUALITY_CONCENTRATION",
    "QUALITY_MEAN",
    "QUALITY_REQUIRED",
    "RATE",
    "RESULTS",
    "ROLLBACK",
    "SCENARIOS",
    "SLOWER",
    "SLOWER_ADJUSTED",
    "SLOWER_NAME",
    "TIER_1",
    "TIER_1_EARLY",
    "TWO_A_MINUTE",
    "UNDECIDED",
    "Array",
    "Histograms",
    "Outcome",
    "Scenario",
    "before_specs",
    "main",
    "simulate",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rollouts", type=int, default=1000, help="rollouts per scenario")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="scenarios run in parallel")
    ap.add_argument("--only", default="", help="run the scenarios whose name contains this")
    ap.add_argument("--without", default="", help="... but not those whose name contains this")
    ap.add_argument("--before", action="store_true", help="errors/refusals not required")
    ap.add_argument("--out", type=Path, default=RESULTS / "canary_sim.md")
    args = ap.parse_args(argv)
    started = time.monotonic()
    chosen = [
        i
        for i, sc in enumerate(SCENARIOS)
        if args.only in sc.name and not (args.without and args.without in sc.name)
    ]
    jobs = [(i, args.rollouts, args.seed, args.before) for i in chosen]
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(run_scenario, jobs, chunksize=1)
    else:
        results = [run_scenario(j) for j in jobs]
    command = " ".join(["bench/canary_sim.py", *(argv if argv is not None else sys.argv[1:])])
    table = render(results, args.seed, args.before, command, time.monotonic() - started)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
