"""The controller's view of sticky users: the design effect of the rollout's users for the
error, latency and cost tests, and CUPED's adjustment for each user's day before (the
error test's exposures, the adjusted cost sums, the latency tests' tail offsets)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy import stats

from canary_bench.sketch import Array
from canary_bench.users import Users
from trimtab.canary.analysis import ArmArrays
from trimtab.canary.clustering import MEANS_CENTRE
from trimtab.canary.metrics import MetricSpec, latency_thresholds
from trimtab.stats.clustered import (
    NO_EVIDENCE,
    adjusted_proneness,
    design_effect,
    effective_clusters,
    exposures,
    history_coefficient,
    majority_arm,
    model_design_effect,
    regression_design_effect,
)
from trimtab.stats.cuped import adjusted_sums, mean_coefficient, tail_offsets


def _adjusted(
    sums_u: dict[str, Array], q: str, n_u: Array, shift: dict[str, Array]
) -> tuple[Array, Array]:
    """The users' sums and sums of squares of ``q`` per window, CUPED-adjusted by
    ``shift[q]`` when it is known (as ``stats.cuped.adjusted_sums``)."""
    if q not in shift:
        return sums_u[q], sums_u[q + "_sq"]
    total, squares, _ = adjusted_sums(sums_u[q], sums_u[q + "_sq"], n_u, shift[q], True, 1.0, 0.0)
    return total, squares


# How a look's design effect is taken from the estimates (bench/canary_pass_calibration.py):
# "estimated", the controller's (this look's, floored at 1; a rate's pass side against the
# pooled rate and its regression side against its arm, widened by the units' t over the
# requests' at the test's alpha, stats.clustered.regression_design_effect; a mean's against
# the rest of its
# arm); "z_regression", a rate's regression side as its pass side (the controller before
# 2026-12-04's second change); "one", 1 once each arm has its units (the clustering
# ignored); "running_max", the rollout's largest so far; "stage_max", the stage's largest
# so far; "t_corrected", times (t_df / z)^2 at T_LEVEL, df the estimate's effective
# clusters; "model", the error rate's from a model of the units' overdispersion
# (stats.clustered.model_design_effect), the others' estimated; "model_max", the larger of
# the two for the error rate; "arms", a rate's residuals against the rest of its arm too;
# "pooled", a mean's against the pooled mean too (the controller before 2026-12-04);
# "t_regression", the error rate's regression side alone times (t_df / z)^2 (its pass side
# and the other metrics estimated); "arms_t", both: a rate against its arm, and its
# regression side so corrected. All but "estimated" take one design effect for a rate's
# two sides unless they say otherwise; those with a t take scipy's t at the fractional df.
RULES = (
    "estimated", "z_regression", "one", "running_max", "stage_max", "t_corrected", "model",
    "model_max", "arms", "pooled", "t_regression", "arms_t",
)  # fmt: skip
T_LEVEL = 0.01


def _t_factor(df: Array) -> Array:
    """``(t_{df}^{-1}(1 - T_LEVEL) / z^{-1}(1 - T_LEVEL))^2``: how much wider a t interval
    on ``df`` degrees of freedom (at least 1) is than the normal one, squared."""
    t = np.asarray(stats.t.ppf(1.0 - T_LEVEL, np.maximum(df, 1.0)), dtype=np.float64)
    out: Array = (t / float(stats.norm.ppf(1.0 - T_LEVEL))) ** 2
    return out


@dataclass
class Clustering:
    """What the tests get from the users, kept between looks; ``rule`` (:data:`RULES`) is
    how each look's design effect is taken from the estimates."""

    rule: str = "estimated"
    alpha: float = 0.01  # the error test's, for the controller's regression side
    dispersion: dict[str, Array] = field(default_factory=dict)  # design effect per metric
    # where a rule takes another for a metric's regression side ("estimated", "t_regression")
    regression: dict[str, Array] = field(default_factory=dict)
    exposure: Array | None = None  # (R, 2, W): the error test's requests as exposures
    shift: dict[str, Array] = field(default_factory=dict)  # CUPED's b per user (R, U)
    x_adj: Array | None = None  # the users' adjusted proneness (CUPED on errors)
    kept_stage: Array | None = None  # "stage_max": each rollout's stage at the last estimate

    def update(
        self, us: Users, look: int, cluster_means: bool, lat_specs: list[MetricSpec]
    ) -> None:
        """After a look's requests are counted: the design effects and CUPED's coefficients
        every fourth look (they move slowly), the error test's exposures every look."""
        n_u, k_u, sums_u, arm_u, pre = us.n_u, us.k_u, us.sums_u, us.arm, us.day_before
        if look % 4 == 0:  # the design effect moves slowly: every fourth look
            arm = majority_arm(n_u, arm_u)  # each user's arm for CUPED's coefficients
            if pre is not None:  # CUPED's coefficient, from the rollout's users
                theta, _ = history_coefficient(k_u.sum(1), n_u.sum(1), pre.x_pre, pre.known, arm)
                self.x_adj = adjusted_proneness(pre.x_pre, theta)
            before = self.dispersion
            d = self._taken(k_u, n_u, arm_u, self.x_adj, None)
            if self.rule in ("model", "model_max"):
                by_model = model_design_effect(k_u, n_u, arm_u, self.x_adj)
                d = by_model if self.rule == "model" else np.maximum(d, by_model)
            self.dispersion = {"error_rate": d}
            if self.rule == "estimated":
                d_r = regression_design_effect(k_u, n_u, arm_u, None, None, self.x_adj,
                                               alpha=self.alpha).d  # fmt: skip
                self.regression = {"error_rate": d_r}
            elif self.rule in ("t_regression", "arms_t"):
                centre = "pooled" if self.rule == "t_regression" else "arms"
                df = effective_clusters(k_u, n_u, arm_u, self.x_adj, centre=centre)
                self.regression = {"error_rate": np.where(d >= NO_EVIDENCE, d, d * _t_factor(df))}
            if cluster_means:  # as the controller: cost, and latency on its log
                for q in ("lat", "cost"):
                    if pre is not None and q in pre.x_means:  # CUPED on each user's day before
                        x, known = pre.x_means[q], pre.known
                        th, _, xb = mean_coefficient(sums_u[q].sum(1), n_u.sum(1), x, known, arm)
                        self.shift[q] = np.where(known, th[:, None] * (x - xb[:, None]), 0)
                lat_t, lat_q = _adjusted(sums_u, "lat", n_u, self.shift)
                cost_t, cost_q = _adjusted(sums_u, "cost", n_u, self.shift)
                self.dispersion["cost"] = self._taken(cost_t, n_u, arm_u, None, cost_q)
                d_lat = self._taken(lat_t, n_u, arm_u, None, lat_q)
                self.dispersion.update({spec.name: d_lat for spec in lat_specs})
            if self.rule == "running_max":
                self.dispersion = _running_max(self.dispersion, before)
            elif self.rule == "stage_max":  # the stage: the windows with traffic so far
                stage = (n_u.sum(-1) > 0).sum(-1)
                if self.kept_stage is not None:
                    kept = _running_max(self.dispersion, before)
                    same = stage == self.kept_stage
                    self.dispersion = {
                        name: np.where(same, kept[name], d) for name, d in self.dispersion.items()
                    }
                self.kept_stage = stage
        if self.x_adj is not None:  # the exposures move with every request: every look
            self.exposure = exposures(n_u, arm_u, self.x_adj)

    def _taken(
        self,
        k: Array,
        n: Array,
        arm: npt.NDArray[np.bool_],
        x: Array | None,
        squares: Array | None,
    ) -> Array:
        """This look's design effect by the rule (but the running maximum, taken after)."""
        centre = MEANS_CENTRE if squares is not None else "pooled"
        if self.rule in ("arms", "pooled"):
            centre = self.rule
        elif self.rule == "arms_t":
            centre = "arms"
        d = design_effect(k, n, arm, proneness=x, squares=squares, centre=centre)
        if self.rule == "one":
            d = np.where(d >= NO_EVIDENCE, d, 1.0)
        elif self.rule == "t_corrected":
            df = effective_clusters(k, n, arm, x, squares=squares)
            d = np.where(d >= NO_EVIDENCE, d, d * _t_factor(df))
        elif self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}: one of {', '.join(RULES)}")
        return d

    def adjusted_arms(
        self,
        us: Users,
        s_arr: ArmArrays,
        c_arr: ArmArrays,
        refs: dict[str, Array],
        lat_specs: list[MetricSpec],
    ) -> tuple[ArmArrays, ArmArrays, dict[str, Array]]:
        """As the controller: the arms' CUPED-adjusted cost sums, and each latency test's
        requests as exposures (R, 2, W) from the users' tail offsets above stable's
        threshold ``refs``; unchanged (and no exposures) when nothing is adjusted."""
        lat_n: dict[str, Array] = {}
        shift, n_u, sums_u, arm_u = self.shift, us.n_u, us.sums_u, us.arm
        if not shift:
            return s_arr, c_arr, lat_n
        arm_w: npt.NDArray[np.bool_] = np.broadcast_to(
            arm_u if arm_u.ndim == 3 else arm_u[:, None, :], n_u.shape
        )
        if "cost" in shift:
            cost_t, cost_q = _adjusted(sums_u, "cost", n_u, shift)
            s_arr, c_arr = (
                replace(
                    a,
                    cost_sum=np.where(side, cost_t, 0.0).sum(-1),
                    cost_sq_sum=np.where(side, cost_q, 0.0).sum(-1),
                )
                for a, side in ((s_arr, ~arm_w), (c_arr, arm_w))
            )
        if "lat" in shift:
            lat_t, lat_q = _adjusted(sums_u, "lat", n_u, shift)
            n_stable = np.maximum(np.where(arm_w, 0.0, n_u).sum((1, 2)), 1.0)
            m_s = np.where(arm_w, 0.0, lat_t).sum((1, 2)) / n_stable
            sd_s = np.sqrt(
                np.maximum(np.where(arm_w, 0.0, lat_q).sum((1, 2)) / n_stable - m_s**2, 0.0)
            )
            for spec in lat_specs:
                t_s, _ = latency_thresholds(1.0, spec.tolerance)
                log_t = np.log(np.maximum(refs[spec.name] * t_s, 1e-300))
                r_u = tail_offsets(shift["lat"], n_u.sum(1), log_t, m_s, sd_s)
                lat_n[spec.name] = exposures(n_u, arm_u, r_u)
        return s_arr, c_arr, lat_n


def _running_max(now: dict[str, Array], before: dict[str, Array]) -> dict[str, Array]:
    """Each metric's design effect, never below the largest an earlier look took (an
    earlier look's "no evidence yet" is no estimate)."""
    out = dict(now)
    for name, d in now.items():
        if name in before:
            kept = np.where(before[name] >= NO_EVIDENCE, 1.0, before[name])
            out[name] = np.where(d >= NO_EVIDENCE, d, np.maximum(d, kept))
    return out
