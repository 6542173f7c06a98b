"""The paired comparison of two eval runs, timed: trimtab's `stats.paired.compare` against
the generic scipy calls a user would reach for (scipy.stats.bootstrap with BCa for the
interval, scipy.stats.permutation_test for the p-value), on the same items, in one run.

    .venv/bin/python bench/evals_stats.py                 # 10,000 paired items
    .venv/bin/python bench/evals_stats.py --items 1000 --repeats 5

Pass/fail scores (a 2-point drop) and continuous scores in [0, 1] (a 0.01 drop), 9,999
resamples each. Prints a Markdown table and writes it to bench/results/evals_stats.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from trimtab.stats.paired import DEFAULT_RESAMPLES, compare

Arrays = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def pass_fail(rng: np.random.Generator, n: int) -> Arrays:
    base = (rng.random(n) < 0.85).astype(np.float64)
    flip = rng.random(n) < 0.1
    cand = np.where(flip, (rng.random(n) < 0.65).astype(np.float64), base)
    return base, cand


def continuous(rng: np.random.Generator, n: int) -> Arrays:
    base = rng.beta(5, 2, n)
    return base, np.clip(base - 0.01 + rng.normal(0, 0.1, n), 0, 1)


def scipy_generic(base: npt.NDArray[np.float64], cand: npt.NDArray[np.float64]) -> None:
    rng = np.random.default_rng(0)
    sps.bootstrap((cand - base,), np.mean, n_resamples=DEFAULT_RESAMPLES, method="BCa", rng=rng)
    sps.permutation_test(
        (base, cand),
        lambda x, y, axis: np.mean(y - x, axis=axis),
        permutation_type="samples",
        n_resamples=DEFAULT_RESAMPLES,
        vectorized=True,
        rng=rng,
    )


def timed(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    rows = []
    for label, make in (("pass/fail", pass_fail), ("continuous", continuous)):
        base, cand = make(rng, args.items)
        ours = timed(partial(compare, base, cand), args.repeats)
        theirs = timed(partial(scipy_generic, base, cand), args.repeats)
        result = compare(base, cand)
        interval = f"{result.difference:+.4f} [{result.low:+.4f}, {result.high:+.4f}]"
        rows.append(
            f"| {label} | {args.items:,} | {ours:.3f} s | {theirs:.3f} s | {theirs / ours:.0f}x "
            f"| {result.method} | {interval}, p {result.p_value:.2g} |"
        )
    machine = platform.processor() or platform.machine()
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    table = "\n".join(
        [
            f"Paired comparison, {DEFAULT_RESAMPLES:,} resamples, median of {args.repeats} "
            f"({machine}, {when} UTC)",
            "",
            "| scores | items | trimtab `compare` | scipy bootstrap + permutation_test | ratio "
            "| method | difference [95 % interval], p |",
            "|---|---:|---:|---:|---:|---|---|",
            *rows,
        ]
    )
    print(table)
    out = Path(__file__).parent / "results" / "evals_stats.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
