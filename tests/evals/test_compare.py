"""Two runs of a suite compared item by item: verdicts, regressions first, Holm across
scorers, errors that void the verdict, floors and tolerated drops in the gate."""

from __future__ import annotations

import numpy as np
import pytest

from trimtab.evals.compare import Gate, ItemScore, RunScores, compare_runs

PASS, FAIL = ItemScore(1.0, True), ItemScore(0.0, False)


def ids(n: int) -> list[str]:
    return [f"i{k:03d}" for k in range(n)]


def run(
    items: list[str], passed: dict[str, bool], scorer: str = "correct"
) -> dict[str, dict[str, ItemScore | None]]:
    return {scorer: {i: PASS if passed[i] else FAIL for i in items}}


def test_a_regression_fails_the_gate_and_lists_the_flipped_items_first() -> None:
    items = ids(300)
    rng = np.random.default_rng(5)
    base = {i: bool(rng.random() < 0.9) for i in items}
    cand = dict(base)
    flipped = [i for i in items if base[i]][:25]
    for i in flipped:
        cand[i] = False
    result = compare_runs(
        items, run(items, base), run(items, cand), Gate(max_drop={"correct": 0.02})
    )
    assert result.outcome == "fail"
    [correct] = result.scorers
    assert correct.verdict == "worse"
    assert correct.to_fail == tuple(flipped) and result.regressions == tuple(flipped)
    assert correct.paired.difference == pytest.approx(-25 / 300)
    assert "correct: worse by 0.083" in result.reasons[0]
    assert "25 items flipped pass → fail" in result.reasons[0]
    doc = result.to_json()
    assert doc["scorers"][0]["method"].startswith("McNemar exact test")
    assert doc["scorers"][0]["n"] == 300 and doc["regressions"] == flipped


def test_a_drop_within_max_drop_passes() -> None:
    items = ids(2000)
    base = {i: True for i in items}
    cand = dict(base)
    for i in items[:20]:  # 1 point: significant with 2,000 items, within a 2-point tolerance
        cand[i] = False
    result = compare_runs(
        items, run(items, base), run(items, cand), Gate(max_drop={"correct": 0.02})
    )
    assert result.scorers[0].verdict == "worse"
    assert result.outcome == "pass"


def test_forty_items_are_too_few_to_tell_a_small_drop() -> None:
    items = ids(40)
    base = {i: k % 5 != 0 for k, i in enumerate(items)}
    cand = dict(base)
    cand[items[1]] = False  # one flip
    result = compare_runs(
        items, run(items, base), run(items, cand), Gate(max_drop={"correct": 0.03})
    )
    assert result.scorers[0].verdict == "underpowered"
    assert result.outcome == "pass"
    assert (
        "underpowered — 40 paired items could detect a drop of 0.150 at best, not 0.03"
        in (result.reasons[0])
    )


def test_too_few_items_give_no_verdict() -> None:
    items = ids(6)
    same = {i: True for i in items}
    result = compare_runs(items, run(items, same), run(items, same), Gate())
    assert result.outcome == "no_verdict"
    assert result.reasons == ("correct: too little data — 6 paired items, fewer than 10",)


def test_floors() -> None:
    items = ids(100)
    base = {i: True for i in items}
    cand = {i: k >= 15 for k, i in enumerate(items)}  # 85 % pass
    low = compare_runs(
        items,
        run(items, base),
        run(items, cand),
        Gate(min_pass_rate={"correct": 0.9}, max_drop={"correct": 0.5}),
    )
    assert low.outcome == "fail"
    assert (
        "correct: pass rate 85.0% (95% interval 76.7% to 90.7%, 100 items) is below the floor 90%"
        in low.reasons
    )


def test_errors_past_max_errors_void_the_verdict() -> None:
    items = ids(100)
    base = run(items, {i: True for i in items})
    cand: RunScores = {"correct": {i: (None if k < 6 else PASS) for k, i in enumerate(items)}}
    result = compare_runs(items, base, cand, Gate())
    assert result.outcome == "no_verdict" and result.candidate_errors == 6
    assert (
        "the candidate run failed on 6 of 100 items (6.0%), more than max_errors 5%"
        in result.reasons[0]
    )
    # within the bound: the errored items are left out of the pairing, and counted
    ok = compare_runs(items, base, cand, Gate(max_errors=0.1))
    assert ok.outcome == "pass" and ok.scorers[0].paired.n == 94 and ok.candidate_errors == 6


def test_holm_across_scorers_and_a_better_candidate() -> None:
    items = ids(400)
    base = {i: k % 2 == 0 for k, i in enumerate(items)}
    better = {i: base[i] or k % 4 == 1 for k, i in enumerate(items)}  # 100 fail -> pass
    baseline = run(items, base) | run(items, base, "polite")
    candidate = run(items, better) | run(items, base, "polite")
    result = compare_runs(items, baseline, candidate, Gate())
    correct, polite = result.scorers
    assert correct.verdict == "better" and len(correct.to_pass) == 100
    assert correct.p_adjusted == pytest.approx(min(1.0, 2 * correct.paired.p_value))
    assert polite.verdict == "no_difference" and polite.p_adjusted == 1.0
    assert result.outcome == "pass"


def test_bad_gates_and_runs() -> None:
    items = ids(20)
    r = run(items, {i: True for i in items})
    with pytest.raises(ValueError, match="gate names scorers the suite does not have: typo"):
        compare_runs(items, r, r, Gate(max_drop={"typo": 0.1}))
    with pytest.raises(ValueError, match="baseline run has no scores for polite"):
        compare_runs(items, r, r | run(items, {i: True for i in items}, "polite"), Gate())
