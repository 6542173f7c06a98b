"""The verdict of a candidate run against a baseline run of one suite, and its gate (pure).

Items are paired by id. For each scorer: the paired comparison of `stats.paired`
(interval, p-value, the smallest detectable drop), Holm's correction across the suite's
scorers, a verdict word, and the items that flipped pass → fail (the regressions to read
first) and fail → pass. An item that errored in either run is left out of the pairing and
counted; a run whose error share passes `max_errors` gets no verdict at all, rather than
a verdict on the items that survived.

The gate passes when every floor (`min_pass_rate`) holds on the candidate and no scorer is
`worse` by more than its `max_drop`; a scorer that could not have seen a drop of its
`max_drop` is named as underpowered in the reasons. Fewer than `stats.paired.MIN_ITEMS`
paired items give no verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from trimtab.stats.paired import (
    MIN_ITEMS,
    PairedResult,
    Verdict,
    compare,
    holm,
    resolution,
    verdict,
)
from trimtab.stats.proportions import wilson_interval

ALPHA = 0.05
DEFAULT_MAX_ERRORS = 0.05


@dataclass(frozen=True, slots=True)
class ItemScore:
    value: float
    passed: bool


# scorer name -> item id -> its score, or None when the item errored
RunScores = Mapping[str, Mapping[str, ItemScore | None]]


@dataclass(frozen=True, slots=True)
class Gate:
    min_pass_rate: Mapping[str, float] = field(default_factory=dict)
    max_drop: Mapping[str, float] = field(default_factory=dict)
    max_errors: float = DEFAULT_MAX_ERRORS


@dataclass(frozen=True, slots=True)
class ScorerComparison:
    scorer: str
    paired: PairedResult
    p_adjusted: float
    verdict: Verdict
    max_drop: float
    pass_rate: float  # the candidate's, over its scored items
    pass_rate_low: float
    pass_rate_high: float
    scored: int
    to_fail: tuple[str, ...]
    to_pass: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        p = self.paired
        return {
            "scorer": self.scorer,
            "verdict": self.verdict,
            "method": p.method + f"; Holm across scorers, alpha {ALPHA:g}",
            "n": p.n,
            "baseline_mean": p.baseline_mean,
            "candidate_mean": p.candidate_mean,
            "difference": p.difference,
            "interval": [p.low, p.high],
            "confidence": p.confidence,
            "p_value": p.p_value,
            "p_adjusted": self.p_adjusted,
            "detectable_drop": p.detectable_drop,
            "max_drop": self.max_drop,
            "pass_rate": self.pass_rate,
            "pass_rate_interval": [self.pass_rate_low, self.pass_rate_high],
            "scored": self.scored,
            "pass_to_fail": list(self.to_fail),
            "fail_to_pass": list(self.to_pass),
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    outcome: Literal["pass", "fail", "no_verdict"]
    reasons: tuple[str, ...]
    scorers: tuple[ScorerComparison, ...]
    items: int
    baseline_errors: int
    candidate_errors: int

    @property
    def regressions(self) -> tuple[str, ...]:
        """Items that passed on the baseline and fail on the candidate, on any scorer,
        in scorer order: what to read first."""
        return tuple(dict.fromkeys(i for s in self.scorers for i in s.to_fail))

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "items": self.items,
            "errors": {"baseline": self.baseline_errors, "candidate": self.candidate_errors},
            "regressions": list(self.regressions),
            "scorers": [s.to_json() for s in self.scorers],
        }


def _errored(run: RunScores, items: Sequence[str]) -> set[str]:
    return {i for scores in run.values() for i in items if scores.get(i) is None}


def _scored(run: RunScores, scorer: str, item: str) -> ItemScore:
    score = run[scorer][item]
    assert score is not None  # errored items are left out of the pairing
    return score


def compare_runs(
    items: Sequence[str],
    baseline: RunScores,
    candidate: RunScores,
    gate: Gate,
    *,
    seed: int = 0,
) -> Comparison:
    """Compare two runs of one suite over the dataset's `items` (ids, in order)."""
    scorers = list(candidate)
    missing = [s for s in scorers if s not in baseline]
    if missing:
        raise ValueError(f"the baseline run has no scores for {', '.join(missing)}")
    unknown = sorted((set(gate.min_pass_rate) | set(gate.max_drop)) - set(scorers))
    if unknown:
        raise ValueError(f"the gate names scorers the suite does not have: {', '.join(unknown)}")
    base_errors = _errored(baseline, items)
    cand_errors = _errored(candidate, items)
    n_items = len(items)
    reasons: list[str] = []
    for label, errors in (("baseline", base_errors), ("candidate", cand_errors)):
        if n_items and len(errors) / n_items > gate.max_errors:
            reasons.append(
                f"the {label} run failed on {len(errors)} of {n_items} items "
                f"({len(errors) / n_items:.1%}), more than max_errors {gate.max_errors:.0%}: "
                "no verdict on the rest"
            )
    paired_ids = [i for i in items if i not in base_errors and i not in cand_errors]
    results: list[tuple[str, PairedResult, list[str], list[str], list[ItemScore]]] = []
    for name in scorers:
        pairs = [(i, _scored(baseline, name, i), _scored(candidate, name, i)) for i in paired_ids]
        result = compare([b.value for _, b, _ in pairs], [c.value for _, _, c in pairs], seed=seed)
        to_fail = [i for i, b, c in pairs if b.passed and not c.passed]
        to_pass = [i for i, b, c in pairs if c.passed and not b.passed]
        scored = [hit for i in items if (hit := candidate[name].get(i)) is not None]
        results.append((name, result, to_fail, to_pass, scored))
    adjusted = holm([r.p_value for _, r, _, _, _ in results])
    comparisons = []
    for (name, result, to_fail, to_pass, scored), p_adj in zip(results, adjusted, strict=True):
        max_drop = gate.max_drop.get(name, 0.0)
        passes = sum(s.passed for s in scored)
        low, high = wilson_interval(passes, len(scored))
        comparisons.append(
            ScorerComparison(
                scorer=name,
                paired=result,
                p_adjusted=p_adj,
                verdict=verdict(result, p_adj, alpha=ALPHA, max_drop=max_drop),
                max_drop=max_drop,
                pass_rate=passes / len(scored) if scored else 0.0,
                pass_rate_low=low,
                pass_rate_high=high,
                scored=len(scored),
                to_fail=tuple(to_fail),
                to_pass=tuple(to_pass),
            )
        )
    counts = (n_items, len(base_errors), len(cand_errors))
    thin = [s for s in comparisons if s.verdict == "too_little_data"]
    for s in thin:
        reasons.append(
            f"{s.scorer}: too little data — {s.paired.n} paired items, fewer than {MIN_ITEMS}"
        )
    if reasons:
        return Comparison("no_verdict", tuple(reasons), tuple(comparisons), *counts)
    failed = False
    for s in comparisons:
        floor = gate.min_pass_rate.get(s.scorer)
        if floor is not None:
            holds = s.pass_rate >= floor
            failed |= not holds
            reasons.append(
                f"{s.scorer}: pass rate {s.pass_rate:.1%} "
                f"(95% interval {s.pass_rate_low:.1%} to {s.pass_rate_high:.1%}, {s.scored} items) "
                f"{'meets' if holds else 'is below'} the floor {floor:.0%}"
            )
        if s.verdict == "worse" and -s.paired.difference > s.max_drop:
            failed = True
            reasons.append(
                f"{s.scorer}: worse by {-s.paired.difference:.3f} "
                f"(interval {s.paired.low:.3f} to {s.paired.high:.3f}, "
                f"p {s.p_adjusted:.3g} after Holm), "
                f"more than max_drop {s.max_drop:g}; {len(s.to_fail)} items flipped pass → fail"
            )
        elif s.verdict == "underpowered":
            reasons.append(
                f"{s.scorer}: underpowered — {s.paired.n} paired items could detect a drop of "
                f"{s.paired.detectable_drop:.3f} at best, not {resolution(s.max_drop):g}"
            )
    outcome: Literal["pass", "fail"] = "fail" if failed else "pass"
    return Comparison(outcome, tuple(reasons), tuple(comparisons), *counts)
