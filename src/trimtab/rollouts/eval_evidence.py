"""Which `eval` attestations the release gate counts (issue 13).

An `eval` attestation is run-backed when `eval run --gate` wrote it from a run (its row in
`eval_attestations` names the run, the suite and its tags, the dataset version, the digest
the run called and the verdict), else manual (`trimtab attest --kind eval`). Tiers 0 and 1
count either, as before. From tier 2 up only run-backed ones count, and together: every
suite of the route tagged `golden` or `safety` (at least one of each) needs a run on the
candidate's exact digest whose latest verdict passed. The rule is pure; the store reads
its inputs (rollouts/attestations.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trimtab.canary.gates import Attestation

RUN_BACKED_TIER = 2  # from this tier up, a hand-typed eval attestation does not count
REQUIRED_TAGS = ("golden", "safety")


@dataclass(frozen=True, slots=True)
class RunLink:
    """What a run-backed eval attestation was written from."""

    run_id: str
    suite: str
    tags: tuple[str, ...]
    dataset: str
    dataset_version: int
    target_digest: str
    verdict: str  # pass | fail


@dataclass(frozen=True, slots=True)
class EvalEvidence:
    """The eval evidence of a version as the gate reads it: `attestations` (the version's,
    with its eval ones replaced by the one verdict the tier allows) and why the eval part
    does not pass (empty when it does, or below tier 2)."""

    attestations: tuple[Attestation, ...]
    problems: tuple[str, ...]


def eval_evidence(
    tier: int,
    digest: str,
    attestations: Sequence[tuple[Attestation, RunLink | None]],
    suites: Mapping[str, Sequence[str]],
) -> EvalEvidence:
    """`attestations` in order, each with its run (None: manual); `suites`: the route's
    applied suites and their tags."""
    if tier < RUN_BACKED_TIER:
        return EvalEvidence(tuple(a for a, _ in attestations), ())
    others = [a for a, _ in attestations if a.kind != "eval"]
    latest: dict[str, tuple[Attestation, RunLink]] = {}
    manual = False
    by = ""
    for att, link in attestations:
        if att.kind != "eval":
            continue
        if link is None:
            manual = True
        elif link.target_digest == digest:
            latest[link.suite] = (att, link)
            by = att.by
    problems: list[str] = []
    required = {name: tags for name, tags in suites.items() if set(tags) & set(REQUIRED_TAGS)}
    for tag in REQUIRED_TAGS:
        if not any(tag in tags for tags in required.values()):
            problems.append(f"the route has no eval suite tagged '{tag}'")
    for name in sorted(required):
        found = latest.get(name)
        if found is None:
            problems.append(f"suite '{name}' has no run-backed eval on this version's digest")
        elif found[0].result != "pass":
            problems.append(f"suite '{name}': run {found[1].run_id} failed its gate")
    if manual and problems:
        problems.append(f"a manual eval attestation does not count at risk tier {tier}")
    if not latest:  # nothing run-backed on this digest: the gate says the eval is missing
        return EvalEvidence(tuple(others), tuple(problems))
    verdict = Attestation("eval", "fail" if problems else "pass", by)
    return EvalEvidence((*others, verdict), tuple(problems))
