"""Release gates by risk tier: what evidence a candidate version needs before a rollout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["eval", "redteam", "approval", "changelog"]
Result = Literal["pass", "fail"]

# tier -> evidence required (cumulative, as the tiers rise)
REQUIRED: dict[int, tuple[Kind, ...]] = {
    0: (),
    1: ("changelog",),
    2: ("changelog", "eval", "approval"),
    3: ("changelog", "eval", "approval", "redteam"),
}


@dataclass(frozen=True, slots=True)
class Attestation:
    kind: Kind
    result: Result
    by: str  # the owner of the key that made it


def missing_evidence(
    tier: int,
    author: str,
    attestations: Iterable[Attestation],
    has_message: bool,
    eval_problems: Sequence[str] = (),
) -> list[str]:
    """What the gate still needs, in words; empty when the rollout may start.

    A version's apply message counts as its changelog. An approval counts only from
    someone other than the version's author; a failing attestation of a kind counts
    against it until a later passing one. ``eval_problems`` say why the run-backed eval
    evidence a tier from 2 up asks for is not there (rollouts/eval_evidence.py); the
    missing eval is then named with them."""
    latest: dict[str, Attestation] = {}
    approvers: set[str] = set()
    for att in attestations:
        latest[att.kind] = att
        if att.kind == "approval":
            if att.result == "pass" and att.by != author:
                approvers.add(att.by)
            elif att.result == "fail":
                approvers.discard(att.by)
    out: list[str] = []
    for kind in REQUIRED[tier]:
        if kind == "changelog":
            changelog = latest.get("changelog")
            if not has_message and not (changelog and changelog.result == "pass"):
                out.append("a changelog (an apply message or a changelog attestation)")
        elif kind == "approval":
            if not approvers:
                out.append(f"an approval by someone other than the author ({author})")
        else:
            last = latest.get(kind)
            name = {"eval": "a passing eval attestation", "redteam": "a red-team sign-off"}[kind]
            if kind == "eval" and eval_problems:
                out.append(
                    "a passing eval attestation written by `trimtab eval run SUITE --gate` ("
                    + "; ".join(eval_problems)
                    + ")"
                )
            elif last is None or last.result != "pass":
                out.append(name + (" (the latest one failed)" if last else ""))
    return out
