"""An answer's scores as a run records them: each scorer's score or error, NUL-free."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trimtab.evals.datasets import Item
from trimtab.evals.scorers import Answer, Score, Scorer, ScorerError


def score_all(
    scorers: Mapping[str, Scorer], item: Item, answer: Answer
) -> dict[str, dict[str, Any]]:
    """Each scorer's score of the answer, or its error on this item (never a silent 0)."""
    out: dict[str, dict[str, Any]] = {}
    for name, scorer in scorers.items():
        try:
            out[name] = stored_score(scorer(item, answer))
        except ScorerError as exc:
            out[name] = stored_score(exc)
    return out


def stored_score(result: Score | ScorerError) -> dict[str, Any]:
    """A score as a run records it, or a scorer's error on the item."""
    if isinstance(result, ScorerError):
        out: dict[str, Any] = {"error": stored_text(str(result))}
        if result.judge is not None:
            out["judge"] = _stored(result.judge)
        return out
    out = {"value": result.value, "passed": result.passed, "reason": stored_text(result.reason)}
    if result.judge is not None:
        out["judge"] = _stored(result.judge)
    return out


def _stored(value: Any) -> Any:
    """`value` with stored_text applied to every string in it."""
    if isinstance(value, str):
        return stored_text(value)
    if isinstance(value, dict):
        return {k: _stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stored(v) for v in value]
    return value


def stored_text(text: str) -> str:
    """`text` with each NUL as U+FFFD: the store's text columns cannot hold a NUL, and the
    API refuses one; the gateway's records do the same (telemetry/rows.py)."""
    return text.replace("\x00", "\ufffd")
