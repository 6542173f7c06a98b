"""The mock upstream's judge: model ``judge-mock`` answers a judge's rubric with a score.

Deterministic and simple, as a mock: the rubric is the text after ``rubric:`` (any message,
or an Anthropic ``system``, up to the end of its line or sentence), the answer judged is the
text after the last ``Answer:`` of the last user message (to the end of that line; the whole
message without one). The score is the share of the rubric's words (three letters or more)
the answer contains, and the reply is the JSON a judge route asks for::

    {"score": 0.5, "reason": "mock judge: 1 of 2 rubric words (polite)"}

A request without a rubric scores 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

MODEL = "judge-mock"
_RUBRIC = re.compile(r"rubric:\s*([^\n.]*)", re.IGNORECASE)
_ANSWER = re.compile(r"answer:[ \t]*([^\n]*)", re.IGNORECASE)
_WORD = re.compile(r"[a-z]{3,}")


def _texts(body: dict[str, Any], messages: Sequence[dict[str, Any]]) -> list[str]:
    out = [body["system"]] if isinstance(body.get("system"), str) else []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return out


def judge_text(body: dict[str, Any], messages: Sequence[dict[str, Any]], last_user: str) -> str:
    """The judge's answer to this request, as JSON text."""
    rubric: list[str] = []
    for text in _texts(body, messages):
        for found in _RUBRIC.finditer(text):
            rubric.extend(w for w in _WORD.findall(found.group(1).lower()) if w not in rubric)
    answers = _ANSWER.findall(last_user)
    answer = set(_WORD.findall((answers[-1] if answers else last_user).lower()))
    if not rubric:
        return json.dumps({"score": 0, "reason": "mock judge: no rubric to judge against"})
    hits = [w for w in rubric if w in answer]
    reason = f"mock judge: {len(hits)} of {len(rubric)} rubric words"
    if hits:
        reason += f" ({', '.join(hits)})"
    return json.dumps({"score": round(len(hits) / len(rubric), 3), "reason": reason})
