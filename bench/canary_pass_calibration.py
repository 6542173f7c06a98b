"""The error test's pass side at its margin, with sticky users: how often a candidate that is
no better than the margin is promoted, under each rule for taking the design effect.

A non-inferiority test at ``alpha_pass`` may pass a candidate exactly at its margin in at
most ``alpha_pass`` of rollouts however often it looks. With ``--pass-only`` the error rate's
regression side is switched off (its ``alpha`` is 1e-300), so every promotion is the pass
test's: the share promoted is its error at the candidate's rate (``--factor``: 1.4 puts a
1 % stable rate's candidate at the default plan's 0.4-point margin, 1.5 beyond it).
``--rule`` is how each look's design effect is taken (``canary_bench.clustering.RULES``:
``estimated`` is the controller's). Figures for docs/canary.md, "Sticky users":

    .venv/bin/python bench/canary_pass_calibration.py --factor 1.4 --pass-only \\
        --rule estimated --rollouts 200 --seed 1
    .venv/bin/python bench/canary_pass_calibration.py --factor 1.0 --rule running_max

Each run is one scenario (``--scenario``, an exact name from ``canary_bench.scenarios``;
default the adjusted sticky +50 % one), with its error factor replaced when ``--factor``
is given; a line per run with the shares, their Wilson 95 % intervals, the seed and the
rollouts. Without ``--pass-only`` and ``--factor`` it runs a scenario as it is under
another rule (``--rule pooled``: a mean's design effect against the pooled mean, as the
controller took it before 2026-12-04; docs/canary.md has the commands).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import numpy as np  # noqa: E402
from canary_bench.clustering import RULES  # noqa: E402
from canary_bench.outcome import PAUSE, PROMOTE, ROLLBACK, share  # noqa: E402
from canary_bench.scenarios import SCENARIOS, Scenario  # noqa: E402
from canary_bench.simulation import simulate  # noqa: E402

from trimtab.canary.metrics import Metric  # noqa: E402
from trimtab.canary.plans import Stage  # noqa: E402

DEFAULT_SCENARIO = "errors 1 % -> 1.5 % (+50 %), 2,000 sticky users, Zipf 1.0, adjusted"


def _varied(sc: Scenario, args: argparse.Namespace) -> Scenario:
    """The scenario with the diagnostic changes the flags ask for."""
    if args.one_stage:
        stages = [
            Stage(percent=50, min_duration_s=3000, min_canary_requests=1000, max_duration_s=6000),
            Stage(percent=100),
        ]
        sc = dataclasses.replace(sc, plan=sc.plan.model_copy(update={"stages": stages}))
    if args.quick:  # the plan of tests/canary/test_simulation.py, a look every 1,000 requests
        stages = [
            Stage(percent=10, min_duration_s=0, min_canary_requests=100, max_duration_s=1200),
            Stage(percent=50, min_duration_s=0, min_canary_requests=200, max_duration_s=3600),
            Stage(percent=100),
        ]
        plan = sc.plan.model_copy(update={"stages": stages})
        sc = dataclasses.replace(sc, plan=plan, look_requests=1000)
    if args.users_alike:
        sc = dataclasses.replace(sc, proneness_shape=1e6, activity_proneness=0.0)
    if args.untilted:
        sc = dataclasses.replace(sc, activity_proneness=0.0)
    if args.not_adjusted:
        plan = sc.plan.model_copy(update={"adjust_for_history": False})
        sc = dataclasses.replace(sc, plan=plan, pre_period_s=0.0)
    return sc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--scenario", default=DEFAULT_SCENARIO, help="an exact scenario name")
    ap.add_argument(
        "--factor",
        type=float,
        default=None,
        help="candidate's error rate / stable's (default: the scenario's own)",
    )
    ap.add_argument("--rule", choices=RULES, default="estimated")
    ap.add_argument("--pass-only", action="store_true", help="the error test's regression off")
    ap.add_argument(
        "--one-stage",
        action="store_true",
        help="one stage at 50 %% (3,000 to 6,000 s), no widening",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="the tests' quick plan (10 %%, then 50 %%, a look every 1,000 requests)",
    )
    ap.add_argument("--users-alike", action="store_true", help="no user errs more than another")
    ap.add_argument("--untilted", action="store_true", help="error-proneness not tied to activity")
    ap.add_argument("--not-adjusted", action="store_true", help="no day before (no CUPED)")
    ap.add_argument("--rollouts", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    found = [s for s in SCENARIOS if s.name == args.scenario]
    if not found:
        ap.error(f"no scenario named {args.scenario!r}")
    sc = found[0]
    if args.factor is not None:
        sc = dataclasses.replace(sc, error_factor=args.factor, healthy=args.factor == 1.0)
    sc = _varied(sc, args)
    specs = tuple(
        dataclasses.replace(s, alpha=1e-300)
        if args.pass_only and s.metric is Metric.ERROR_RATE
        else s
        for s in sc.plan.specs()
    )
    started = time.process_time()
    o = simulate(sc, args.rollouts, np.random.default_rng(args.seed), specs, rule=args.rule)
    shares = []
    for action in (PROMOTE, ROLLBACK, PAUSE):
        p, lo, hi = share(o, action)
        shares.append(f"{action} {p:.1%} [{lo:.1%}, {hi:.1%}]")
        if action == ROLLBACK and p > 0:
            by = sorted((v, k) for k, v in o.by_metric.items() if v > 0)[::-1]
            shares[-1] += " (by " + ", ".join(f"{k} {v:.1%}" for v, k in by) + ")"
    side = "pass side only" if args.pass_only else "both sides"
    flags = [
        f
        for f in ("one_stage", "quick", "users_alike", "untilted", "not_adjusted")
        if getattr(args, f)
    ]
    if flags:
        side += " (" + ", ".join(f.replace("_", " ") for f in flags) + ")"
    print(
        f"{sc.name}, error factor {sc.error_factor:g}, rule {args.rule}, {side}: "
        f"{'; '.join(shares)} ({args.rollouts} rollouts, seed {args.seed}, "
        f"{time.process_time() - started:.0f} s CPU)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
