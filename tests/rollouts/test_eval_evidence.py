"""The release gate's eval rule by tier: manual evals count below tier 2; from tier 2 up,
only run-backed ones on the candidate's digest, for every golden and safety suite."""

from __future__ import annotations

from trimtab.canary.gates import Attestation, missing_evidence
from trimtab.rollouts.eval_evidence import RunLink, eval_evidence

DIGEST = "d" * 64
SUITES = {"golden-set": ("golden",), "safety-set": ("safety",), "other": ("smoke",)}


def run(
    suite: str, verdict: str = "pass", digest: str = DIGEST, run_id: str = "run_1"
) -> tuple[Attestation, RunLink]:
    tags = SUITES.get(suite, ())
    att = Attestation("eval", "pass" if verdict == "pass" else "fail", "ci@acme")
    return att, RunLink(run_id, suite, tags, "items", 3, digest, verdict)


MANUAL = (Attestation("eval", "pass", "dana@acme"), None)
CHANGELOG = (Attestation("changelog", "pass", "dana@acme"), None)


def evals(tier: int, *atts: tuple[Attestation, RunLink | None]) -> list[Attestation]:
    return [
        a for a in eval_evidence(tier, DIGEST, list(atts), SUITES).attestations if a.kind == "eval"
    ]


def test_below_tier_2_a_manual_eval_counts_as_before() -> None:
    for tier in (0, 1):
        assert evals(tier, MANUAL) == [MANUAL[0]]
        out = eval_evidence(tier, DIGEST, [MANUAL, CHANGELOG], SUITES)
        assert out.problems == () and list(out.attestations) == [MANUAL[0], CHANGELOG[0]]


def test_from_tier_2_a_manual_eval_does_not_count() -> None:
    out = eval_evidence(2, DIGEST, [MANUAL, CHANGELOG], SUITES)
    assert list(out.attestations) == [CHANGELOG[0]]
    assert "a manual eval attestation does not count at risk tier 2" in out.problems
    missing = missing_evidence(2, "dana@acme", out.attestations, has_message=True)
    assert "a passing eval attestation" in missing


def test_golden_and_safety_runs_on_the_digest_pass() -> None:
    out = eval_evidence(3, DIGEST, [run("golden-set"), run("safety-set")], SUITES)
    assert out.problems == ()
    assert [(a.kind, a.result) for a in out.attestations] == [("eval", "pass")]


def test_one_suite_missing_or_failing_or_on_another_digest_fails() -> None:
    only_golden = eval_evidence(2, DIGEST, [run("golden-set")], SUITES)
    assert only_golden.problems == (
        "suite 'safety-set' has no run-backed eval on this version's digest",
    )
    assert [a.result for a in only_golden.attestations] == ["fail"]
    failed = eval_evidence(
        2, DIGEST, [run("golden-set"), run("safety-set", "fail", run_id="run_9")], SUITES
    )
    assert failed.problems == ("suite 'safety-set': run run_9 failed its gate",)
    elsewhere = eval_evidence(
        2, DIGEST, [run("golden-set"), run("safety-set", digest="e" * 64)], SUITES
    )
    assert (
        "suite 'safety-set' has no run-backed eval on this version's digest" in elsewhere.problems
    )
    # a later passing run of the failed suite passes it again
    again = eval_evidence(
        2, DIGEST, [run("golden-set"), run("safety-set", "fail"), run("safety-set")], SUITES
    )
    assert again.problems == ()


def test_a_route_without_a_safety_suite_cannot_pass_tier_2() -> None:
    suites = {"golden-set": ("golden",)}
    out = eval_evidence(2, DIGEST, [run("golden-set")], suites)
    assert out.problems == ("the route has no eval suite tagged 'safety'",)
    assert [a.result for a in out.attestations] == ["fail"]
    nothing = eval_evidence(2, DIGEST, [], {})
    assert nothing.problems == (
        "the route has no eval suite tagged 'golden'",
        "the route has no eval suite tagged 'safety'",
    )
    assert nothing.attestations == ()
