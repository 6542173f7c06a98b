"""The controller's view of sticky users: the design effect of the rollout's users for the
error, latency and cost tests, and CUPED's adjustment for each user's day before (the
error test's exposures, the adjusted cost sums, the latency tests' tail offsets)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from canary_bench.sketch import Array
from canary_bench.users import Users
from trimtab.canary.analysis import ArmArrays
from trimtab.canary.metrics import MetricSpec, latency_thresholds
from trimtab.stats.clustered import (
    adjusted_proneness,
    design_effect,
    exposures,
    history_coefficient,
    majority_arm,
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


@dataclass
class Clustering:
    """What the tests get from the users, kept between looks."""

    dispersion: dict[str, Array] = field(default_factory=dict)  # design effect per metric
    exposure: Array | None = None  # (R, 2, W): the error test's requests as exposures
    shift: dict[str, Array] = field(default_factory=dict)  # CUPED's b per user (R, U)
    x_adj: Array | None = None  # the users' adjusted proneness (CUPED on errors)

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
            d = design_effect(k_u, n_u, arm_u, proneness=self.x_adj)
            self.dispersion = {"error_rate": d}
            if cluster_means:  # as the controller: cost, and latency on its log
                for q in ("lat", "cost"):
                    if pre is not None and q in pre.x_means:  # CUPED on each user's day before
                        x, known = pre.x_means[q], pre.known
                        th, _, xb = mean_coefficient(sums_u[q].sum(1), n_u.sum(1), x, known, arm)
                        self.shift[q] = np.where(known, th[:, None] * (x - xb[:, None]), 0)
                lat_t, lat_q = _adjusted(sums_u, "lat", n_u, self.shift)
                cost_t, cost_q = _adjusted(sums_u, "cost", n_u, self.shift)
                self.dispersion["cost"] = design_effect(cost_t, n_u, arm_u, squares=cost_q)
                d_lat = design_effect(lat_t, n_u, arm_u, squares=lat_q)
                self.dispersion.update({spec.name: d_lat for spec in lat_specs})
        if self.x_adj is not None:  # the exposures move with every request: every look
            self.exposure = exposures(n_u, arm_u, self.x_adj)

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
