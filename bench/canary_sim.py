"""Canary analysis, simulated: false rollbacks and time to detect, against the field's methods.

Each rollout sends requests to a route at a 1:9 candidate:stable split (every request goes
to the candidate with probability 0.1) and checks after every batch of 100 requests (10
canary requests on average), exactly as the controller would: cumulative counters per arm,
fed to the same functions that ``trimtab.canary.analysis.analyze`` uses, with the same
default metric specs (``DEFAULT_METRICS``). A rollout rolls back at the first check at which
any metric shows a regression. Rollouts are vectorised with numpy, so every check of every
rollout is one row of an array.

    .venv/bin/python bench/canary_sim.py                  # 1,000 rollouts per scenario
    .venv/bin/python bench/canary_sim.py --rollouts 200   # quicker
    .venv/bin/python bench/canary_sim.py --seed 2 --horizon 20000

The same simulated traffic is judged by three methods, so the comparison is paired:

* **trimtab**: the always-valid tests of ``trimtab.rollouts`` (error rate, latency p95 and
  p50, mean cost, negative-feedback rate, with their default tolerances and alphas).
* **naive z-test**: the dashboard habit: a one-sided z-test at the same margins, 1.96, looked
  at every 50 canary requests.
* **Wald SPRT**: candidate data only, the baseline known exactly and the alternative set to
  the true regression; alpha 1 %, beta 5 %, at the same checks. No real controller can run it
  (it needs the answer in advance); it is the floor for how fast a test at 1 % / 95 % can be.

Writes a Markdown table to stdout and to ``bench/results/canary_sim.md``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trimtab.canary.analysis import DEFAULT_METRICS, Metric, MetricSpec
from trimtab.stats.intervals import RatioMixture, mixture_rho
from trimtab.stats.sequential import Tolerance, mean_evidence, rate_evidence, rate_mixtures

Array = npt.NDArray[np.float64]
RESULTS = Path(__file__).resolve().parent / "results"

# The simulated route (stable's behaviour).
BATCH = 100  # requests between checks
SHARE = 0.1  # the candidate's share: 1:9
ERROR_RATE = 0.01
LATENCY_MEDIAN_MS = 1200.0
LATENCY_SIGMA = 0.5  # log-normal: p95 = median * exp(1.645 * 0.5) = 2.28 x median
COST_MEAN = 0.002  # USD per request
COST_SIGMA = 0.8  # log-normal; coefficient of variation 0.95
FEEDBACK_SHARE = 0.2  # share of requests that get thumbs up/down
NEGATIVE_RATE = 0.10  # share of feedback that is negative
REFERENCE_REQUESTS = 5000  # stable requests before the rollout, for the p95 reference
NAIVE_EVERY = 50  # canary requests between the naive test's looks
NAIVE_Z = 1.96
SPRT_ALPHA, SPRT_BETA = 0.01, 0.05


@dataclass(frozen=True)
class Scenario:
    name: str
    error_rate: float = ERROR_RATE
    latency_factor: float = 1.0
    cost_factor: float = 1.0
    negative_rate: float = NEGATIVE_RATE
    metric: str | None = None  # the metric that regressed


SCENARIOS = (
    Scenario("healthy (candidate = stable)"),
    Scenario("errors 1 % -> 2 %", error_rate=0.02, metric="error_rate"),
    Scenario("errors 1 % -> 5 %", error_rate=0.05, metric="error_rate"),
    Scenario("latency +30 % (whole distribution)", latency_factor=1.3, metric="latency"),
    Scenario("cost per request +20 %", cost_factor=1.2, metric="cost"),
    Scenario("negative feedback 10 % -> 15 %", negative_rate=0.15, metric="feedback"),
)


def _norm_sf(x: Array | float) -> Array:
    """P(Z > x) for the standard normal, elementwise."""
    xa = np.asarray(x, dtype=np.float64)
    return np.asarray(0.5 * np.vectorize(math.erfc)(xa / math.sqrt(2.0)), dtype=np.float64)


def _spec(metric: Metric, quantile: float = 0.95) -> MetricSpec:
    for s in DEFAULT_METRICS:
        if s.metric is metric and (metric is not Metric.LATENCY or s.quantile == quantile):
            return s
    raise KeyError(metric)


@dataclass
class Outcome:
    rollback_at: Array  # canary requests at the first rollback (inf: none)
    advance_at: Array  # canary requests when every required metric first passed (inf: never)
    first: dict[str, Array]  # per metric: canary requests at its first regression
    passes: dict[str, Array]  # per metric: canary requests at its first pass (trimtab)


class Arms:
    """Cumulative counters of both arms for R rollouts."""

    def __init__(self, r: int) -> None:
        z = np.zeros(r)
        self.n_c, self.n_s = z.copy(), z.copy()
        self.err_c, self.err_s = z.copy(), z.copy()
        self.fb_c, self.fb_s = z.copy(), z.copy()
        self.neg_c, self.neg_s = z.copy(), z.copy()
        self.slow_c, self.slow_s = z.copy(), z.copy()  # above the trimtab thresholds
        self.slow50_c, self.slow50_s = z.copy(), z.copy()  # the same for the median
        self.cost_c, self.cost_s = z.copy(), z.copy()
        self.cost2_c, self.cost2_s = z.copy(), z.copy()
        # for the SPRT (candidate only)
        self.slowm_c = z.copy()  # candidate above the margin on stable's true p95
        self.logcost_c = z.copy()


def simulate(
    sc: Scenario, rollouts: int, horizon: int, rng: np.random.Generator
) -> dict[str, Outcome]:
    """Run every method on the same traffic; returns outcomes per method."""
    lat_spec, cost_spec = _spec(Metric.LATENCY), _spec(Metric.COST)
    med_spec = _spec(Metric.LATENCY, 0.5)
    err_spec, fb_spec = _spec(Metric.ERROR_RATE), _spec(Metric.NEGATIVE_FEEDBACK_RATE)
    r = rollouts
    mu_lat = math.log(LATENCY_MEDIAN_MS)
    true_p95 = math.exp(mu_lat + 1.6448536269514722 * LATENCY_SIGMA)
    # p95 reference: stable's p95 over the requests before the rollout, per rollout.
    ref = np.quantile(
        np.exp(rng.normal(mu_lat, LATENCY_SIGMA, (r, REFERENCE_REQUESTS))), lat_spec.quantile, 1
    )
    t_s = ref
    t_c = ref * (1.0 + lat_spec.tolerance.relative)
    p_slow_s = _norm_sf((np.log(t_s) - mu_lat) / LATENCY_SIGMA)
    ref50 = np.quantile(
        np.exp(rng.normal(mu_lat, LATENCY_SIGMA, (r, REFERENCE_REQUESTS))), med_spec.quantile, 1
    )
    t_c50 = ref50 * (1.0 + med_spec.tolerance.relative)
    p_slow50_s = _norm_sf((np.log(ref50) - mu_lat) / LATENCY_SIGMA)
    mu_cost = math.log(COST_MEAN) - COST_SIGMA**2 / 2
    mu_lat_c = mu_lat + math.log(sc.latency_factor)

    # trimtab's tests, parameterised exactly as analyze() does from the specs.
    rate_params: dict[str, tuple[float, RatioMixture, RatioMixture, float]] = {}
    for key, spec, tol in (
        ("error_rate", err_spec, err_spec.tolerance),
        ("latency", lat_spec, Tolerance()),
        ("latency_p50", med_spec, Tolerance()),
        ("feedback", fb_spec, fb_spec.tolerance),
    ):
        lp0, reg_mix, ok_mix = rate_mixtures(
            spec.direction, tol, design_ratio=spec.design_ratio, pass_ratio=spec.pass_ratio
        )
        rate_params[key] = (lp0, reg_mix, ok_mix, spec.alpha)
    rho_reg = mixture_rho(cost_spec.design_n, cost_spec.alpha)
    rho_ok = mixture_rho(cost_spec.pass_design_n, cost_spec.alpha_pass)
    l_reg = {k: math.log(1 / v[3]) for k, v in rate_params.items()}
    l_reg["cost"] = math.log(1 / cost_spec.alpha)
    l_ok = {
        "latency": math.log(1 / lat_spec.alpha_pass),
        "cost": math.log(1 / cost_spec.alpha_pass),
    }
    required = [s for s in DEFAULT_METRICS if s.required]
    assert {s.metric for s in required} == {Metric.LATENCY, Metric.COST}

    # SPRT: candidate data only, the baseline known, H0 = the candidate exactly at the
    # tolerance's margin, H1 = the scenario's truth (healthy: the matching scenario's).
    z95 = 1.6448536269514722
    err_m = err_spec.tolerance.coef(err_spec.direction)
    p1_err = sc.error_rate if sc.metric == "error_rate" else 0.02
    lat_m = 1.0 + lat_spec.tolerance.relative
    lat_alt = sc.latency_factor if sc.metric == "latency" else 1.3
    p1_slow = float(_norm_sf(z95 + (math.log(lat_m) - math.log(lat_alt)) / LATENCY_SIGMA))
    cost_m0 = math.log(cost_spec.tolerance.coef(cost_spec.direction))
    cost_m1 = math.log(sc.cost_factor if sc.metric == "cost" else 1.2)
    fb_m = fb_spec.tolerance.coef(fb_spec.direction)
    p1_neg = sc.negative_rate if sc.metric == "feedback" else 0.15
    sprt_a = math.log((1 - SPRT_BETA) / SPRT_ALPHA)
    sprt_b = math.log(SPRT_BETA / (1 - SPRT_ALPHA))
    sprt_metrics = [sc.metric] if sc.metric else ["error_rate", "latency", "cost", "feedback"]

    arms = Arms(r)
    keys = ("error_rate", "latency", "latency_p50", "cost", "feedback")

    def inf() -> Array:
        return np.full(r, np.inf)

    out = {
        m: Outcome(inf(), inf(), {k: inf() for k in keys}, {k: inf() for k in keys})
        for m in ("trimtab", "naive", "sprt")
    }
    sprt_open = {m: np.ones(r, bool) for m in sprt_metrics}
    next_naive = np.full(r, float(NAIVE_EVERY))
    fb_coef = fb_spec.tolerance.coef(fb_spec.direction)
    steps = max(1, round(horizon / (BATCH * SHARE)))
    for _ in range(steps):
        nc = rng.binomial(BATCH, SHARE, r).astype(np.float64)
        ns = BATCH - nc
        a = arms
        a.n_c += nc
        a.n_s += ns
        a.err_c += rng.binomial(nc.astype(np.int64), sc.error_rate)
        a.err_s += rng.binomial(ns.astype(np.int64), ERROR_RATE)
        fbc = rng.binomial(nc.astype(np.int64), FEEDBACK_SHARE)
        fbs = rng.binomial(ns.astype(np.int64), FEEDBACK_SHARE)
        a.fb_c += fbc
        a.fb_s += fbs
        a.neg_c += rng.binomial(fbc, sc.negative_rate)
        a.neg_s += rng.binomial(fbs, NEGATIVE_RATE)
        a.slow_s += rng.binomial(ns.astype(np.int64), p_slow_s)
        a.slow50_s += rng.binomial(ns.astype(np.int64), p_slow50_s)
        # The candidate's requests one by one (latency and cost), the first nc columns.
        width = int(nc.max()) if nc.size else 0
        cmask = np.arange(width)[None, :] < nc[:, None]
        lat_c = rng.normal(mu_lat_c, LATENCY_SIGMA, (r, width))
        a.slow_c += ((lat_c > np.log(t_c)[:, None]) & cmask).sum(1)
        a.slow50_c += ((lat_c > np.log(t_c50)[:, None]) & cmask).sum(1)
        a.slowm_c += ((lat_c > math.log(true_p95 * lat_m)) & cmask).sum(1)
        lc = rng.normal(mu_cost, COST_SIGMA, (r, width))
        cc = np.exp(lc) * sc.cost_factor
        a.cost_c += np.where(cmask, cc, 0.0).sum(1)
        a.cost2_c += np.where(cmask, cc * cc, 0.0).sum(1)
        a.logcost_c += np.where(cmask, lc + math.log(sc.cost_factor) - mu_cost, 0.0).sum(1)
        wid_s = int(ns.max())
        smask = np.arange(wid_s)[None, :] < ns[:, None]
        cs = np.where(smask, np.exp(rng.normal(mu_cost, COST_SIGMA, (r, wid_s))), 0.0)
        a.cost_s += cs.sum(1)
        a.cost2_s += (cs * cs).sum(1)

        # --- trimtab ---
        reg: dict[str, Array] = {}
        ok: dict[str, Array] = {}
        for key, (kc, ncs, ks, nss) in {
            "error_rate": (a.err_c, a.n_c, a.err_s, a.n_s),
            "latency": (a.slow_c, a.n_c, a.slow_s, a.n_s),
            "latency_p50": (a.slow50_c, a.n_c, a.slow50_s, a.n_s),
            "feedback": (a.neg_c, a.fb_c, a.neg_s, a.fb_s),
        }.items():
            lp0, rm, om, _ = rate_params[key]
            reg[key], ok[key] = rate_evidence(
                col(kc),
                col(ncs),
                col(ks),
                col(nss),
                log_psi0=lp0,
                regression_mixture=rm,
                pass_mixture=om,
            )
        reg["cost"], ok["cost"] = mean_evidence(
            col(a.n_c),
            col(a.cost_c),
            col(a.cost2_c),
            col(a.n_s),
            col(a.cost_s),
            col(a.cost2_s),
            sign=cost_spec.direction.sign,
            coef=cost_spec.tolerance.coef(cost_spec.direction),
            offset=cost_spec.tolerance.absolute,
            rho_regression=rho_reg,
            rho_pass=rho_ok,
            min_samples=cost_spec.min_samples,
        )
        rolled = np.zeros(r, bool)
        t = out["trimtab"]
        for key, v in reg.items():
            hit = v >= l_reg[key]
            rolled |= hit
            first = t.first[key]
            new = hit & np.isinf(first)
            first[new] = a.n_c[new]
        for key in ("latency", "cost"):
            new = (ok[key] >= l_ok[key]) & np.isinf(t.passes[key])
            t.passes[key][new] = a.n_c[new]
        # A stage that advanced goes on being watched (at a larger share, in a real plan):
        # rollbacks after the first pass still count as caught here.
        fresh = rolled & np.isinf(t.rollback_at)
        t.rollback_at[fresh] = a.n_c[fresh]
        passed = (ok["latency"] >= l_ok["latency"]) & (ok["cost"] >= l_ok["cost"])
        adv = passed & ~rolled & np.isinf(t.rollback_at) & np.isinf(t.advance_at)
        t.advance_at[adv] = a.n_c[adv]

        # --- naive z-test, same margins, every 50 canary requests ---
        look = a.n_c >= next_naive
        if look.any():
            next_naive = np.where(look, next_naive + NAIVE_EVERY, next_naive)
            z = np.maximum.reduce(
                [
                    _naive_rate(a.err_c, a.n_c, a.err_s, a.n_s, 1.0),
                    _naive_rate(a.slow_c, a.n_c, a.slow_s, a.n_s, 1.0),
                    _naive_rate(a.neg_c, a.fb_c, a.neg_s, a.fb_s, fb_coef),
                    _naive_mean(a, cost_spec.tolerance.coef(cost_spec.direction)),
                ]
            )
            nv = out["naive"]
            hit = look & (z > NAIVE_Z) & np.isinf(nv.rollback_at)
            nv.rollback_at[hit] = a.n_c[hit]

        # --- Wald's SPRT, candidate only ---
        sp = out["sprt"]
        for m in sprt_metrics:
            if m == "error_rate":
                v = _bern_llr(a.err_c, a.n_c, ERROR_RATE * err_m, p1_err)
            elif m == "latency":
                v = _bern_llr(a.slowm_c, a.n_c, 0.05, p1_slow)
            elif m == "cost":
                mid = a.n_c * (cost_m0 + cost_m1) / 2
                v = (cost_m1 - cost_m0) * (a.logcost_c - mid) / COST_SIGMA**2
            else:
                v = _bern_llr(a.neg_c, a.fb_c, NEGATIVE_RATE * fb_m, p1_neg)
            op = sprt_open[m]
            hit = op & (v >= sprt_a) & np.isinf(sp.rollback_at)
            sp.rollback_at[hit] = a.n_c[hit]
            op &= ~(v <= sprt_b) & ~(v >= sprt_a)
    return out


def col(x: Array) -> Array:
    """Counters as one window per rollout: shape (R, 1)."""
    return x[:, None]


def _bern_llr(k: Array, n: Array, p0: float, p1: float) -> Array:
    out: Array = k * math.log(p1 / p0) + (n - k) * math.log((1 - p1) / (1 - p0))
    return out


def _naive_rate(kc: Array, nc: Array, ks: Array, ns: Array, coef: float) -> Array:
    pc = kc / np.maximum(nc, 1)
    ps = ks / np.maximum(ns, 1)
    pool = (kc + ks) / np.maximum(nc + ns, 1)
    se = np.sqrt(pool * (1 - pool) * (1 / np.maximum(nc, 1) + coef**2 / np.maximum(ns, 1)))
    z: Array = np.where(se > 0, (pc - coef * ps) / np.where(se > 0, se, 1.0), 0.0)
    return z


def _naive_mean(a: Arms, coef: float) -> Array:
    nc, ns = np.maximum(a.n_c, 2), np.maximum(a.n_s, 2)
    mc, ms = a.cost_c / nc, a.cost_s / ns
    vc = np.maximum(a.cost2_c / nc - mc * mc, 0) * nc / (nc - 1)
    vs = np.maximum(a.cost2_s / ns - ms * ms, 0) * ns / (ns - 1)
    se = np.sqrt(vc / nc + coef**2 * vs / ns)
    z: Array = np.where(se > 0, (mc - coef * ms) / np.where(se > 0, se, 1.0), 0.0)
    return z


def _fmt_n(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:,.0f}"


def _summary(at: Array) -> tuple[float, float, float]:
    """(share caught, median, p95) of first-rollback times; misses count as never."""
    caught = float(np.isfinite(at).mean())
    return caught, _q(at, 0.5), _q(at, 0.95)


def _q(at: Array, q: float) -> float:
    """Quantile without interpolation (the values may be infinite)."""
    return float(np.quantile(at, q, method="inverted_cdf"))


def _run(job: tuple[int, int, int, np.random.SeedSequence]) -> dict[str, Outcome]:
    index, rollouts, horizon, seed = job
    return simulate(SCENARIOS[index], rollouts, horizon, np.random.default_rng(seed))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rollouts", type=int, default=1000, help="rollouts per scenario")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--horizon", type=int, default=10_000, help="canary requests watched per rollout"
    )
    ap.add_argument("--jobs", type=int, default=2, help="scenarios run in parallel")
    ap.add_argument("--out", type=Path, default=RESULTS / "canary_sim.md")
    args = ap.parse_args(argv)
    started = time.monotonic()
    seeds = np.random.SeedSequence(args.seed).spawn(len(SCENARIOS))
    jobs = [(i, args.rollouts, args.horizon, seeds[i]) for i in range(len(SCENARIOS))]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(_run, jobs, chunksize=1)
    else:
        results = [_run(j) for j in jobs]
    rows: list[str] = []
    notes: list[str] = []
    for sc, res in zip(SCENARIOS, results, strict=True):
        tt, nv, sp = (_summary(res[m].rollback_at) for m in ("trimtab", "naive", "sprt"))
        t = res["trimtab"]
        if sc.metric is None:
            adv = t.advance_at
            rows.append(
                f"| {sc.name} | **{tt[0]:.1%}** false rollbacks | all required metrics "
                f"pass: median {_fmt_n(_q(adv, 0.5))} ({np.isfinite(adv).mean():.0%} "
                f"within the horizon) | {nv[0]:.1%} false | {sp[0]:.1%} false | — |"
            )
            by = ", ".join(f"{k} {np.isfinite(v).mean():.1%}" for k, v in t.first.items())
            notes.append(f"healthy false rollbacks by metric (trimtab): {by}")
            ps = ", ".join(
                f"{k} median {_fmt_n(_q(t.passes[k], 0.5))}" for k in ("latency", "cost")
            )
            notes.append(f"healthy, canary requests until each required metric passes: {ps}")
        else:
            ratio = tt[1] / sp[1] if math.isfinite(tt[1]) and math.isfinite(sp[1]) else math.nan
            rows.append(
                f"| {sc.name} | {tt[0]:.1%} caught | median **{_fmt_n(tt[1])}**, "
                f"p95 {_fmt_n(tt[2])} | {nv[0]:.1%} caught, median {_fmt_n(nv[1])} | "
                f"{sp[0]:.1%} caught, median {_fmt_n(sp[1])} | "
                f"{'—' if math.isnan(ratio) else f'{ratio:.2f}x'} |"
            )
    elapsed = time.monotonic() - started
    command = " ".join(["bench/canary_sim.py", *(argv if argv is not None else sys.argv[1:])])
    table = "\n".join(
        [
            f"{args.rollouts:,} rollouts per scenario, 1:9 canary:stable, a check every "
            f"{BATCH} requests (~{BATCH * SHARE:.0f} canary), up to {args.horizon:,} canary "
            f"requests per rollout, seed {args.seed}. Counts are canary requests at the first "
            "rollback; a rollout not rolled back within the horizon counts as never.",
            "",
            "| scenario | trimtab | trimtab: canary requests | naive z-test "
            f"(every {NAIVE_EVERY}) | Wald SPRT (known baseline) | trimtab / SPRT median |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            *[f"- {n}" for n in notes],
            f"- `{command}` took {elapsed:.0f} s",
        ]
    )
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
