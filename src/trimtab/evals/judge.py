"""The `judge` scorer's pure half: what a judge route is sent, how its answer is read, and
what k repeats of it add up to; the runner makes the calls (through the gateway, as
`route:NAME`, so the judge is versioned and its calls are recorded).

A judge answers JSON `{"score": number, "reason": string}` on the spec's scale. The answer
is read whole, from a fenced ```json block, or from its outermost `{...}` (judges wrap
their JSON in prose); anything else, a document that fails the schema, or a score off the
scale, is an error on the item that keeps the judge's raw answer, never a silent 0.

With `repeats: k` each item is judged k times: its score is the mean of the k normalised
scores, its agreement the share of repeats that agree with the majority's pass/fail, its
spread the largest minus the smallest score; a run's consistency is the mean agreement
over its items (1.0: every repeat of every item agreed).

Calibration: a dataset whose items carry the answer to judge (`metadata.output`) and a
person's verdict on it (`expected`: pass/fail, true/false or 1/0) is judged like a run's
answers; the judge's pass/fail against the people's gives Cohen's kappa.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import orjson

from trimtab.evals.datasets import Item

ROUTE_PREFIX = "route:"  # as gateway/route_calls.py reads a model name
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
}
_VALIDATOR = jsonschema.Draft202012Validator(ANSWER_SCHEMA)
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.S)
RAW_KEPT = 2000  # characters of each raw answer kept with the score


class JudgementError(ValueError):
    """A judge answer that gives no score on the scale."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One repeat: the judge's raw answer and what was read from it."""

    raw: str | None  # None: the call failed
    value: float | None  # normalised to [0, 1]
    reason: str | None
    error: str | None
    request_id: str | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def item_input(item: Item) -> str:
    """The item's input as the judge reads it: its messages as `role: content` lines, or
    its variables as one JSON object."""
    if item.messages is not None:
        return "\n".join(f"{m.get('role', '')}: {_text(m.get('content'))}" for m in item.messages)
    return _text(dict(item.variables or {}))


def variables(item: Item, output: str, rubric: str, scale: tuple[float, float]) -> dict[str, str]:
    """The judge route's template variables."""
    return {
        "input": item_input(item),
        "output": output,
        "expected": _text(item.expected),
        "rubric": rubric,
        "scale_min": f"{scale[0]:g}",
        "scale_max": f"{scale[1]:g}",
    }


def _candidates(text: str) -> list[str]:
    out = [text.strip()]
    fenced = _FENCE.search(text)
    if fenced:
        out.append(fenced.group(1).strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        out.append(text[start : end + 1])
    return out


def read(text: str, scale: tuple[float, float]) -> tuple[float, str]:
    """(the score normalised to [0, 1], the judge's reason); JudgementError else."""
    document: Any = None
    parsed = False
    for candidate in _candidates(text):
        try:
            document = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        parsed = True
        break
    if not parsed:
        raise JudgementError("the judge's answer holds no JSON object")
    problem = next(iter(_VALIDATOR.iter_errors(document)), None)
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
        raise JudgementError(
            f"the judge's answer is not {{score: number, reason: string}}: "
            f"{where}: {problem.message[:120]}"
        )
    score = document["score"]
    low, high = scale
    if isinstance(score, bool) or not low <= float(score) <= high:
        raise JudgementError(f"the judge's score {score} is off the scale {low:g}..{high:g}")
    return (float(score) - low) / (high - low), str(document["reason"])


def verdict(text: str, scale: tuple[float, float], request_id: str | None) -> Verdict:
    raw = text[:RAW_KEPT]
    try:
        value, reason = read(text, scale)
    except JudgementError as exc:
        return Verdict(raw, None, None, str(exc), request_id)
    return Verdict(raw, value, reason[:500], None, request_id)


def agreement(values: Sequence[float], threshold: float) -> float:
    """The share of repeats agreeing with the majority's pass/fail (1.0 for one repeat)."""
    if not values:
        raise ValueError("no repeats")
    passes = sum(v >= threshold for v in values)
    return max(passes, len(values) - passes) / len(values)


def detail(verdicts: Sequence[Verdict], threshold: float) -> dict[str, Any]:
    """What is kept with the score: each repeat's raw answer, score, reason and request,
    and, when every repeat scored, the agreement and the spread."""
    out: dict[str, Any] = {
        "repeats": [
            {
                "raw": v.raw,
                "score": v.value,
                "reason": v.reason,
                "error": v.error,
                "request_id": v.request_id,
            }
            for v in verdicts
        ]
    }
    values = [v.value for v in verdicts if v.value is not None]
    if values and len(values) == len(verdicts):
        out["agreement"] = agreement(values, threshold)
        out["spread"] = max(values) - min(values)
    return out


def consistency(details: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A judge's consistency over a run's items: the mean agreement and spread across
    repeats, and the share of items whose repeats all agreed; None without repeats."""
    scored = [d for d in details if "agreement" in d and len(d.get("repeats", ())) > 1]
    if not scored:
        return None
    agreements = [float(d["agreement"]) for d in scored]
    spreads = [float(d["spread"]) for d in scored]
    return {
        "items": len(scored),
        "repeats": max(len(d["repeats"]) for d in scored),
        "mean_agreement": sum(agreements) / len(agreements),
        "unanimous_share": sum(a == 1.0 for a in agreements) / len(agreements),
        "mean_spread": sum(spreads) / len(spreads),
        "max_spread": max(spreads),
    }


def cohen_kappa(first: Sequence[bool], second: Sequence[bool]) -> float | None:
    """Cohen's kappa of two raters' pass/fail labels of the same items: (p_o - p_e) /
    (1 - p_e); None when there are no items or chance agreement is total (p_e = 1)."""
    if len(first) != len(second):
        raise ValueError("the two raters labelled different numbers of items")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    yes_a, yes_b = sum(first) / n, sum(second) / n
    expected = yes_a * yes_b + (1 - yes_a) * (1 - yes_b)
    if expected == 1.0:
        return None
    return (observed - expected) / (1 - expected)


_PASS = {"pass": True, "fail": False, "true": True, "false": False, "yes": True, "no": False}


def human_label(item: Item) -> bool:
    """A calibration item's human verdict; JudgementError naming the item else."""
    label = item.expected
    if isinstance(label, bool):
        return label
    if isinstance(label, int | float) and label in (0, 1):
        return bool(label)
    if isinstance(label, str) and label.strip().lower() in _PASS:
        return _PASS[label.strip().lower()]
    shown = "none" if label is None else orjson.dumps(label).decode()[:40]
    raise JudgementError(
        f"calibration item '{item.id}': 'expected' must be the person's verdict "
        f"(pass/fail, true/false or 1/0), not {shown}"
    )


def calibration_output(item: Item) -> str:
    """The answer a calibration item asks the judge to score: its `metadata.output`."""
    output = item.metadata.get("output")
    if not isinstance(output, str):
        raise JudgementError(
            f"calibration item '{item.id}': 'metadata.output' must be the answer to judge"
        )
    return output


def calibration(
    labels: Mapping[str, bool], judged: Mapping[str, float | None], threshold: float
) -> dict[str, Any]:
    """The judge against the people over the items both labelled: Cohen's kappa, the share
    agreeing, each side's pass rate, and the items they disagree on."""
    both = [i for i in labels if judged.get(i) is not None]
    people = [labels[i] for i in both]
    machine = [float(judged[i] or 0.0) >= threshold for i in both]
    n = len(both)
    return {
        "items": n,
        "kappa": cohen_kappa(machine, people),
        "agreement": sum(a == b for a, b in zip(machine, people, strict=True)) / n if n else None,
        "judge_pass_rate": sum(machine) / n if n else None,
        "people_pass_rate": sum(people) / n if n else None,
        "disagreements": [i for i, a, b in zip(both, machine, people, strict=True) if a != b],
    }
