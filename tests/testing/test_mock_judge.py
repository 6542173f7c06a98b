"""The mock upstream's judge (trimtab.testing.mock_judge): model `judge-mock` answers a
judge's rubric with the share of its words the judged answer holds, as the JSON a judge
route asks for, through the official openai SDK."""

from __future__ import annotations

import json

import openai

from trimtab.testing.mock_judge import judge_text
from trimtab.testing.mock_upstream import MockUpstream


def test_the_score_is_the_share_of_the_rubric_words_in_the_answer() -> None:
    messages = [
        {"role": "system", "content": "Rubric: polite, mentions refund. Reply JSON."},
        {"role": "user", "content": "Question: q\nAnswer: Sorry, your REFUND is on its way"},
    ]
    got = json.loads(judge_text({}, messages, str(messages[-1]["content"])))
    assert got == {"score": 0.333, "reason": "mock judge: 1 of 3 rubric words (refund)"}
    none = json.loads(judge_text({}, [{"role": "user", "content": "hi"}], "hi"))
    assert none == {"score": 0, "reason": "mock judge: no rubric to judge against"}
    system = {"system": "rubric: brief"}  # an Anthropic system prompt holds it too
    assert json.loads(judge_text(system, [], "brief answer"))["score"] == 1.0


def test_judge_mock_answers_through_the_sdk(upstream: MockUpstream) -> None:
    client = openai.OpenAI(base_url=upstream.openai_base_url, api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="judge-mock",
        messages=[
            {"role": "system", "content": "rubric: thanks"},
            {"role": "user", "content": "Answer: thanks a lot"},
        ],
    )
    assert json.loads(reply.choices[0].message.content or "") == {
        "score": 1.0, "reason": "mock judge: 1 of 1 rubric words (thanks)"
    }  # fmt: skip
