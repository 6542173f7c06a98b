"""Streamed output checks: any chunking of an answer redacts exactly as the whole answer
would, releasing everything but what could still complete a match."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.guardrails.corpus import build
from trimtab.config import GuardrailsConfig
from trimtab.guardrails.policy import Policy
from trimtab.guardrails.stream import MAX_HOLD, GuardrailBlocked, OutputStream, safe_cut


def policy(**output: Any) -> Policy:
    return Policy(GuardrailsConfig.model_validate({"output": output}))


def stream_all(p: Policy, text: str, rng: random.Random) -> tuple[list[str], OutputStream]:
    s = OutputStream(p, p.new_redactor())
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 12)
        out.append(s.feed(text[i : i + n]))
        i += n
    out.append(s.finish())
    return out, s


def test_any_chunking_redacts_like_the_whole_answer() -> None:
    p = policy(pii={"action": "redact"})
    rng = random.Random(7)
    for snippet in build()[::5]:
        whole = p.check_output(snippet.text, p.new_redactor())
        expected = whole.texts[0] if whole.texts else snippet.text
        pieces, s = stream_all(p, snippet.text, rng)
        assert "".join(pieces) == expected, snippet.text
        for entity, start, end in snippet.labels:
            value = snippet.text[start:end]
            assert not any(value in piece for piece in pieces), (entity, value)
        run = next(r for r in s.runs() if r.check == "output.pii")
        assert len(run.findings) == len(snippet.labels)


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("Sure, here it is", "is"),
        ("Sure, here it is ", ""),
        ("mail jane@ex", "jane@ex"),
        ("card 4111 1111 ", "4111 1111 "),
        ("call (415) 555", "(415) 555"),
        ("IBAN DE89 3704", "IBAN DE89 3704"),  # capitals group like an IBAN's
        ("done. next", "next"),
    ],
)
def test_only_what_could_still_complete_a_match_is_held(text: str, held: str) -> None:
    assert text[safe_cut(text) :] == held


def test_an_unbroken_run_is_released_past_the_bound() -> None:
    run = "a" * (MAX_HOLD + 10)
    assert safe_cut(run) == 10


def test_block_ends_the_stream_before_the_entity_goes_out() -> None:
    p = policy(pii={"action": "block", "entities": ["credit_card"]})
    s = OutputStream(p, p.new_redactor())
    sent = [s.feed(w) for w in ["Your ", "card ", "4111 ", "1111 ", "1111 ", "1111"]]
    with pytest.raises(GuardrailBlocked, match=r"output\.pii"):
        s.finish()
    assert "".join(sent) == "Your card "
    assert s.verdict.blocked is not None and s.verdict.blocked.outcome == "block"


def test_deny_spans_chunks_and_schema_is_judged_at_the_end() -> None:
    p = policy(deny=["secret plan"])
    s = OutputStream(p, p.new_redactor())
    assert s.feed("the secr") == "the secr"  # no PII hold: text goes out at once
    with pytest.raises(GuardrailBlocked, match=r"deny pattern \[0\]"):
        s.feed("et plan is")
    schema = policy(json_schema={"schema": {"type": "object"}, "on_fail": "retry_once"})
    s = OutputStream(schema, schema.new_redactor())
    assert s.feed('["not", "an object"]') == '["not", "an object"]'
    with pytest.raises(GuardrailBlocked, match=r"output\.json_schema"):
        s.finish()  # the text is out: retry_once ends the stream like block


def test_flag_and_shadow_hold_nothing_and_look_once_at_the_end() -> None:
    for p in (
        policy(pii={"action": "flag"}),
        Policy(GuardrailsConfig.model_validate({"mode": "shadow", "output": {"pii": {}}})),
    ):
        s = OutputStream(p, p.new_redactor())
        assert s.feed("mail a@b.exa") == "mail a@b.exa"
        assert s.feed("mple now") == "mple now"
        assert s.finish() == ""
        run = s.runs()[0]
        assert run.outcome in ("flag", "shadow") and run.findings[0].entity == "email"
