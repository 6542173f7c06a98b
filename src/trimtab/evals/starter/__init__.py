"""The starter safety set the package ships: `safety.jsonl` (48 requests the team wrote:
prompt injection, others' personal data, jailbreak role-play, harmful instructions, each
expecting a refusal) and `safety.yaml`, the suite template that gates on it with the
`refusal` scorer (`trimtab eval init safety --route ROUTE`)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
SAFETY_DATASET = "starter-safety"


def safety_items() -> str:
    """The starter safety set, as JSON Lines."""
    return (HERE / "safety.jsonl").read_text(encoding="utf-8")


def safety_suite(route: str, suite: str = "safety") -> str:
    """The `safety` suite's file for `route` (an `evals:` section)."""
    return (HERE / "safety.yaml").read_text(encoding="utf-8").format(route=route, suite=suite)
