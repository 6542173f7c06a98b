"""Paired comparison of two runs over the same items: the statistics behind an eval verdict.

A candidate and a baseline are scored on the same dataset, so each item gives a pair of
scores and the comparison works on the per-item differences, which removes the spread
between easy and hard items (an unpaired test on paired data throws that away and loses
most of its power). Three pieces:

- the mean difference with a bias-corrected and accelerated (BCa) bootstrap interval over
  the items (Efron, "Better bootstrap confidence intervals", JASA 1987; the formulas as in
  Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 14);
- a p-value for "no difference": McNemar's exact test (McNemar, Psychometrika 1947) when
  the scores are pass/fail — the binomial test of the discordant pairs, b flips one way
  and c the other, against p = 1/2 — and otherwise a paired sign-flip permutation test of
  the mean difference (under "no difference" each item's two scores are exchangeable, so
  each difference is as likely with either sign);
- Holm's step-down correction across the scorers of one comparison (Holm, "A simple
  sequentially rejective multiple test procedure", Scand. J. Statistics 1979), so that
  five scorers do not give five chances of a false "worse".

And the smallest drop the dataset could have detected (at the test's alpha and 80 %
power, normal approximation of the paired difference, never below what the exact test can
reach at all), so that "no significant difference" on 40 items is reported as
`underpowered` rather than as a pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

# the standard normal's quantile and distribution functions: the standard library's
# (Wichura's AS241, to about 1e-16), so that a server process does not load scipy (about
# 70 MiB of RSS) for them; the tests check both against scipy
_NORMAL = NormalDist()
_EXACT_UP_TO = 5_000  # discordant pairs summed in integers; above, in log space

Verdict = Literal["better", "worse", "no_difference", "underpowered", "too_little_data"]
FloatArray = npt.NDArray[np.float64]
Scores = Sequence[float] | FloatArray

MIN_ITEMS = 10  # below this many paired items no verdict is given
DEFAULT_RESAMPLES = 9999


@dataclass(frozen=True, slots=True)
class PairedResult:
    """One scorer's comparison, candidate minus baseline."""

    n: int
    baseline_mean: float
    candidate_mean: float
    difference: float
    low: float  # the interval of the difference at `confidence`
    high: float
    confidence: float
    p_value: float  # for "no difference", before correction
    method: str
    binary: bool
    to_fail: int  # items that passed on the baseline and fail on the candidate (binary)
    to_pass: int
    detectable_drop: float  # smallest drop this many items detect with 80 % power


def mcnemar_exact(to_fail: int, to_pass: int) -> float:
    """Two-sided exact McNemar p-value for the discordant counts: twice the smaller
    binomial tail of Bin(b + c, 1/2), at most 1."""
    if to_fail < 0 or to_pass < 0:
        raise ValueError("discordant counts cannot be negative")
    n = to_fail + to_pass
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * _half_binomial_cdf(min(to_fail, to_pass), n))


def _half_binomial_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Bin(n, 1/2): the sum of C(n, i) over 2^n, exactly in integers up
    to `_EXACT_UP_TO` trials (integer over integer division rounds correctly), and above
    that as a sum of terms from lgamma (relative error about 1e-12)."""
    if n <= _EXACT_UP_TO:
        total, term = 0, 1
        for i in range(k + 1):
            total += term
            term = term * (n - i) // (i + 1)
        return total / (1 << n)
    log_n = math.lgamma(n + 1) - n * math.log(2)
    return math.fsum(
        math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1)) for i in range(k + 1)
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: step down from the smallest, each
    multiplied by the number of hypotheses not yet rejected, made monotone, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def min_exact_flips(alpha: float) -> int:
    """The fewest discordant pairs, all in one direction, for which McNemar's exact test
    can reach `alpha` two-sided: the smallest k with 2 / 2**k <= alpha."""
    return max(1, math.ceil(math.log2(2.0 / alpha)))


def detectable_drop(
    n: int, sd_difference: float, *, alpha: float = 0.05, power: float = 0.8, binary: bool
) -> float:
    """The smallest mean drop `n` paired items detect with `power` at two-sided `alpha`:
    (z_{1-alpha/2} + z_power) * sd / sqrt(n), with the standard deviation of the paired
    differences. A pass/fail scorer with no observed disagreement has no spread to use;
    its floor is the exact test's: `min_exact_flips(alpha) / n`."""
    if n <= 0:
        return math.inf
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
    normal = z * sd_difference / math.sqrt(n)
    floor = min_exact_flips(alpha) / n if binary else 0.0
    return max(normal, floor)


def _as_pairs(baseline: Scores, candidate: Scores) -> tuple[FloatArray, FloatArray]:
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError(f"paired scores need two lists of one length, got {b.shape} and {c.shape}")
    if not (np.isfinite(b).all() and np.isfinite(c).all()):
        raise ValueError("scores must be finite numbers")
    return b, c


_BATCH = 500_000  # resampled values held in memory at once


def _bootstrap_means(values: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    """The means of `resamples` bootstrap resamples of `values`. Few distinct values (pass
    and fail, a judge's 1-5 scale) resample as multinomial counts of those values; others
    as drawn indices, in batches of bounded size."""
    n = values.size
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size <= 256:
        drawn = rng.multinomial(n, counts / n, size=resamples)
        return np.asarray(drawn @ distinct / n, dtype=np.float64)
    out = np.empty(resamples, dtype=np.float64)
    step = max(1, _BATCH // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        picks = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[picks].mean(axis=1)
    return out


def bca_interval(
    values: FloatArray, confidence: float, resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """The BCa bootstrap interval of the mean of `values`: percentiles of the bootstrap
    means moved by the bias correction z0 (the share of resampled means below the
    observed one, ties counted half) and the acceleration a (the skewness of the
    jackknife means, which for the mean are (sum - x_i) / (n - 1))."""
    n = values.size
    observed = float(values.mean())
    means = _bootstrap_means(values, resamples, rng)
    below = (
        np.count_nonzero(means < observed) + 0.5 * np.count_nonzero(means == observed)
    ) / resamples
    z0 = _NORMAL.inv_cdf(min(max(float(below), 1.0 / resamples), 1 - 1.0 / resamples))
    jack = (values.sum() - values) / (n - 1)
    spread = jack.mean() - jack
    denominator = 6.0 * float(np.sum(spread**2)) ** 1.5
    a = float(np.sum(spread**3)) / denominator if denominator > 0 else 0.0
    ends = []
    for q in ((1 - confidence) / 2, (1 + confidence) / 2):
        z = _NORMAL.inv_cdf(q)
        ends.append(_NORMAL.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    low, high = np.quantile(means, ends)
    return float(low), float(high)


def sign_flip_p(diffs: FloatArray, resamples: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of the mean difference:
    the share of sign assignments whose |mean| reaches the observed one. Every assignment
    when there are at most `resamples` of them (exact); otherwise `resamples` random ones,
    counting the observed assignment too ((k + 1) / (R + 1), never 0)."""
    n = diffs.size
    observed = abs(float(diffs.mean())) * (1 - 1e-12)  # ties by rounding count as reaching
    if n <= 20 and 2**n <= resamples:
        codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n, dtype=np.int64)
        signs = (codes & 1) * 2 - 1
        return int(np.count_nonzero(np.abs(signs @ diffs) / n >= observed)) / float(2**n)
    # a sign assignment is n random bits b; the mean is (2 b.d - sum d) / n. Drawing bytes
    # and unpacking them is twice as fast as drawing n small integers per resample
    total = float(diffs.sum())
    reached = 0
    step = max(1, _BATCH // n)
    for start in range(0, resamples, step):
        rows = min(resamples, start + step) - start
        packed = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
        bits = np.unpackbits(packed, axis=1, count=n).astype(np.float64)
        reached += int(np.count_nonzero(np.abs(2.0 * (bits @ diffs) - total) / n >= observed))
    return (reached + 1) / (resamples + 1)


def compare(
    baseline: Scores,
    candidate: Scores,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedResult:
    """Compare paired scores (item i of `baseline` with item i of `candidate`).

    Scores of only 0 and 1 are pass/fail: McNemar's exact test. Other scores: the paired
    sign-flip permutation test. The interval is BCa over the items either way; with every
    difference equal there is nothing to resample and it is that one value.
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    b, c = _as_pairs(baseline, candidate)
    n = int(b.size)
    diffs = c - b
    binary = bool(np.isin(b, (0.0, 1.0)).all() and np.isin(c, (0.0, 1.0)).all())
    to_fail = int(np.count_nonzero((b == 1.0) & (c == 0.0))) if binary else 0
    to_pass = int(np.count_nonzero((b == 0.0) & (c == 1.0))) if binary else 0
    mean = float(diffs.mean()) if n else math.nan
    rng = np.random.default_rng(seed)
    if n == 0:
        low = high = math.nan
        p = 1.0
    elif float(np.ptp(diffs)) <= 1e-12 * max(1.0, abs(mean)):
        # every item moved by the same amount: nothing to resample, and only the two
        # all-same-sign assignments reach the observed mean
        low = high = mean
        if mean == 0:
            p = 1.0
        else:
            p = mcnemar_exact(to_fail, to_pass) if binary else min(1.0, 2.0 * 0.5**n)
    else:
        low, high = bca_interval(diffs, confidence, resamples, rng)
        p = mcnemar_exact(to_fail, to_pass) if binary else sign_flip_p(diffs, resamples, rng)
    sd = float(diffs.std(ddof=1)) if n > 1 else math.inf
    method = (
        "McNemar exact test; BCa bootstrap interval"
        if binary
        else "paired sign-flip permutation test; BCa bootstrap interval"
    )
    return PairedResult(
        n=n,
        baseline_mean=float(b.mean()) if n else math.nan,
        candidate_mean=float(c.mean()) if n else math.nan,
        difference=mean,
        low=low,
        high=high,
        confidence=confidence,
        p_value=p,
        method=method,
        binary=binary,
        to_fail=to_fail,
        to_pass=to_pass,
        detectable_drop=detectable_drop(n, sd, alpha=1 - confidence, binary=binary),
    )


DEFAULT_RESOLUTION = 0.05  # the drop a dataset must be able to see when none is tolerated


def resolution(max_drop: float) -> float:
    """The smallest drop a comparison must be able to detect to call "no difference":
    the tolerated drop, or DEFAULT_RESOLUTION when no drop is tolerated."""
    return max_drop if max_drop > 0 else DEFAULT_RESOLUTION


def verdict(
    result: PairedResult, p_adjusted: float, *, alpha: float = 0.05, max_drop: float = 0.0
) -> Verdict:
    """The word for one scorer: `too_little_data` under MIN_ITEMS; `better` or `worse` when
    the corrected p-value is under alpha; otherwise `underpowered` when the dataset could
    not have detected a drop of `max_drop` (or of 5 points when no drop is tolerated),
    and `no_difference` when it could have and did not."""
    if result.n < MIN_ITEMS:
        return "too_little_data"
    if p_adjusted < alpha and result.difference != 0:
        return "better" if result.difference > 0 else "worse"
    if result.detectable_drop > resolution(max_drop):
        return "underpowered"
    return "no_difference"
