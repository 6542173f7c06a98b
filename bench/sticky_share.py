"""The candidate's share of traffic at each stage of the default plan, with sticky users,
under the two assignments (canary/assignment.py): by bucket, and the first version kept.

Users as in bench/canary_sim.py (2,000, activity ~ 1 / rank^zipf, 20 requests/s, the
default plan's minimum durations: 500 s at 1 %, 300 s at 5 %, 600 s at 25 % and 50 %);
each request's user drawn by activity; the share is the candidate's requests over the
stage's requests, averaged over the runs.

    .venv/bin/python bench/sticky_share.py [--runs 20] [--seed 1]
"""

from __future__ import annotations

import argparse

import numpy as np

USERS = 2000
RATE = 20.0
STAGES = ((0.01, 500), (0.05, 300), (0.25, 600), (0.50, 600))


def shares(zipf: float, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """(first version kept, by bucket): the candidate's share of each stage's requests."""
    act = 1.0 / np.arange(1, USERS + 1) ** zipf
    p = act / act.sum()
    bucket = rng.random(USERS)
    first_seen = np.full(USERS, -1, dtype=np.int8)
    kept, by_bucket = [], []
    for share, seconds in STAGES:
        users = rng.choice(USERS, size=int(RATE * seconds), p=p)
        on = bucket < share
        # a user's first request in this stage fixes its arm if it had none yet
        first = np.unique(users)
        new = first[first_seen[first] < 0]
        first_seen[new] = on[new]
        kept.append(float(first_seen[users].mean()))
        by_bucket.append(float(on[users].mean()))
    return kept, by_bucket


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    header = " | ".join(f"{s:.0%} stage" for s, _ in STAGES)
    print(f"| users | assignment | {header} |")
    print("|---|---|" + "---:|" * len(STAGES))
    for zipf in (0.7, 1.0):
        runs = [shares(zipf, rng) for _ in range(args.runs)]
        for i, name in enumerate(("first version kept", "by bucket")):
            mean = np.mean([r[i] for r in runs], axis=0)
            cells = " | ".join(f"{m:.1%}" for m in mean)
            print(f"| {USERS:,}, Zipf {zipf} | {name} | {cells} |")
    print(f"\n{args.runs} runs, seed {args.seed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
