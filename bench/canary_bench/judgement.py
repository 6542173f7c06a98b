"""The controller's judgement at a look: stable's latency quantiles pooled over its windows,
every metric's verdict from ``analysis.evidence``, then the plan's stage rule (roll back,
advance, promote, pause) for every rollout at once."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from canary_bench.sketch import BUCKETS, GAMMA, KEY_HI, KEY_LO, Array, Histograms, bucket_key
from trimtab.canary.analysis import ArmArrays, evidence, pooled_quantile, verdicts
from trimtab.canary.metrics import Metric, MetricSpec, latency_thresholds

RUNNING, PAUSED, ROLLED_BACK, PROMOTED = 0, 1, 2, 3  # a rollout's status


@dataclass(frozen=True)
class Schedule:
    """A plan's stages as arrays (one row per stage)."""

    percent: Array  # the candidate's share of traffic
    min_dur: Array
    min_can: Array
    max_dur: Array
    final: npt.NDArray[np.bool_]  # the next step promotes


@dataclass
class Progress:
    """Per rollout: its stage, since when, its status, and at its decision the canary's
    requests so far and the time; which metrics rolled it back."""

    stage: npt.NDArray[np.int64]
    stage_start: Array
    status: npt.NDArray[np.int64]  # RUNNING, PAUSED, ROLLED_BACK, PROMOTED
    canary_at: Array
    decided_s: Array
    rolled_by: dict[str, npt.NDArray[np.bool_]]

    @classmethod
    def start(cls, r: int, specs: tuple[MetricSpec, ...]) -> Progress:
        return cls(
            stage=np.zeros(r, dtype=np.int64),
            stage_start=np.zeros(r),
            status=np.zeros(r, dtype=np.int64),
            canary_at=np.full(r, np.nan),
            decided_s=np.full(r, np.nan),
            rolled_by={s.name: np.zeros(r, bool) for s in specs},
        )


def latency_tails(
    hist: dict[str, Histograms],
    stable_n: Array,
    lat_specs: list[MetricSpec],
    rows: npt.NDArray[np.int64],
) -> tuple[dict[str, Array], dict[str, Array], dict[str, Array]]:
    """Each latency test's reference (stable's quantile pooled over its windows, ``inf``
    with no stable requests) and both arms' requests above their thresholds per window."""
    tails_s: dict[str, Array] = {}
    tails_c: dict[str, Array] = {}
    hs, hc = hist["s"], hist["c"]
    total = stable_n.sum(1)
    pooled = hs.counts.sum(1)  # stable's windows pooled: (R, B)
    pooled_above = np.cumsum(pooled[:, ::-1], axis=1)[:, ::-1] - pooled

    def above(t: Array, pa: Array = pooled_above, full: Array = total) -> Array:
        key = np.clip(bucket_key(t), -1, BUCKETS - 1).astype(np.int64)
        got: Array = np.where(key < 0, full, pa[rows, np.maximum(key, 0)])
        return got

    refs: dict[str, Array] = {}
    r = rows.size
    for spec in lat_specs:
        lo = np.full(r, GAMMA**KEY_LO)
        hi = np.full(r, GAMMA ** (KEY_HI + 1))
        ref = pooled_quantile(above, total, spec.quantile, lo, hi)
        ref = np.where(total > 0, ref, np.inf)
        refs[spec.name] = ref
        t_s, t_c = latency_thresholds(1.0, spec.tolerance)
        tails_s[spec.name] = hs.count_above(ref * t_s)
        tails_c[spec.name] = hc.count_above(ref * t_c)
    return refs, tails_s, tails_c


def judge(
    specs: tuple[MetricSpec, ...],
    s_arr: ArmArrays,
    c_arr: ArmArrays,
    dispersion: dict[str, Array],
    exposure: Array | None,
    lat_n: dict[str, Array],
    live: npt.NDArray[np.bool_],
    progress: Progress,
    regression: dict[str, Array] | None = None,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Every metric's verdict: (any regression, every required metric passed) per rollout;
    a live rollout's regressions are marked in ``progress.rolled_by``. ``regression`` is
    the design effect a metric's regression side takes instead of ``dispersion``'s (the
    controller's for the error rate, or a rule of ``clustering.RULES``)."""
    r = live.size
    regressed = np.zeros(r, bool)
    required_ok = np.ones(r, bool)
    for spec in specs:
        s_m, c_m = s_arr, c_arr
        if exposure is not None and spec.metric is Metric.ERROR_RATE:
            s_m = replace(s_arr, n=exposure[:, 0])
            c_m = replace(c_arr, n=exposure[:, 1])
        if spec.name in lat_n:
            s_m = replace(s_arr, latency_n=lat_n[spec.name][:, 0])
            c_m = replace(c_arr, latency_n=lat_n[spec.name][:, 1])
        reg, ok = evidence(spec, s_m, c_m, dispersion, regression)
        bad, good = verdicts(spec, reg, ok)
        progress.rolled_by[spec.name] |= bad & live
        regressed |= bad
        if spec.required:
            required_ok &= good
    return regressed, required_ok


def apply_stage_rule(
    progress: Progress,
    schedule: Schedule,
    promote_early: bool,
    canary_n: Array,
    col: npt.NDArray[np.int64],
    live: npt.NDArray[np.bool_],
    regressed: npt.NDArray[np.bool_],
    required_ok: npt.NDArray[np.bool_],
    now: float,
) -> None:
    """The controller's stage rule: any regression rolls back; a stage past its minimums
    advances, or promotes when the next step is 100 % and every required metric passed; a
    stage still waiting past its maximum pauses. ``canary_n``: the candidate's requests
    per window (R, W)."""
    p, sc = progress, schedule
    rows = np.arange(live.size)
    stage, status = p.stage, p.status
    canary = canary_n.sum(1)
    back = live & regressed
    status[back] = ROLLED_BACK
    p.canary_at[back] = canary[back]
    p.decided_s[back] = now
    running = (status == RUNNING) & ~back
    elapsed = now - p.stage_start
    met = (elapsed >= sc.min_dur[stage]) & (canary_n[rows, col] >= sc.min_can[stage])
    is_final = sc.final[stage]
    if promote_early:  # as the controller: the stages left would add exposure only
        is_final = is_final | required_ok
    promote = running & met & is_final & required_ok
    advance = running & met & ~is_final
    status[promote] = PROMOTED
    p.canary_at[promote] = canary[promote]
    p.decided_s[promote] = now
    stage[advance] += 1
    p.stage_start[advance] = now
    pause = running & ~promote & ~advance & (elapsed > sc.max_dur[stage])
    status[pause] = PAUSED
    p.canary_at[pause] = canary[pause]
