"""Each scorer on answers that pass and fail, with its reason; specs refused with a message
naming the key; items a scorer cannot score are errors, never a silent 0."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from trimtab.evals.datasets import Item
from trimtab.evals.scorers import Answer, Score, ScorerError, ScorerSpec, build, refuses

SPEC: TypeAdapter[Any] = TypeAdapter(ScorerSpec)


def score(spec: dict[str, Any], answer: str | Answer, item: Item | None = None) -> Score:
    scorer = build(SPEC.validate_python({"name": "s", **spec}))
    got = answer if isinstance(answer, Answer) else Answer(answer)
    return scorer(item or Item("i1", {"q": "x"}), got)


def with_expected(expected: Any) -> Item:
    return Item("i1", {"q": "x"}, expected=expected)


def test_exact() -> None:
    assert score({"kind": "exact"}, " 30 days\n", with_expected("30 days")) == Score(
        1.0, True, "equals '30 days'"
    )
    miss = score({"kind": "exact"}, "30 Days", with_expected("30 days"))
    assert (miss.value, miss.passed, miss.reason) == (0.0, False, "'30 Days' is not '30 days'")
    loose = {"kind": "exact", "case_sensitive": False}
    assert score(loose, "30 Days", with_expected(["thirty days", "30 days"])).passed


def test_contains_and_not_contains() -> None:
    assert score({"kind": "contains"}, "Refunds take 30 DAYS.", with_expected("30 days")).passed
    assert not score({"kind": "contains", "values": ["refund"]}, "no money back").passed
    assert score({"kind": "not_contains", "values": ["password"]}, "fine").passed
    leaked = score({"kind": "not_contains", "values": ["password"]}, "the PASSWORD is x")
    assert (leaked.passed, leaked.reason) == (False, "contains 'password'")


def test_regex() -> None:
    assert score({"kind": "regex", "pattern": r"\bREF-\d{4}\b"}, "ticket REF-1234").passed
    assert not score({"kind": "regex", "pattern": r"\d", "must_match": False}, "call 911").passed


def test_is_json_and_json_schema() -> None:
    assert score({"kind": "is_json"}, '{"a": 1}').passed
    assert score({"kind": "is_json"}, 'Here:\n```json\n{"a": 1}\n```').passed
    bad = score({"kind": "is_json"}, "{a: 1}")
    assert not bad.passed and bad.reason.startswith("not JSON: ")
    schema = {
        "type": "object",
        "properties": {"total": {"type": "number"}},
        "required": ["total"],
    }
    assert score({"kind": "json_schema", "schema": schema}, '{"total": 12.5}').passed
    wrong = score({"kind": "json_schema", "schema": schema}, '{"total": "12"}')
    assert (wrong.passed, wrong.reason) == (False, "total: '12' is not of type 'number'")


def test_numeric() -> None:
    assert score({"kind": "numeric"}, "It costs 1,250 dollars", with_expected(1250)).passed
    assert score({"kind": "numeric", "tolerance": 0.5}, "about 41.6", with_expected("42")).passed
    assert not score({"kind": "numeric", "relative": 0.01}, "40", with_expected(42)).passed
    assert (
        score({"kind": "numeric"}, "no idea", with_expected(3)).reason == "no number in the answer"
    )


def test_length() -> None:
    assert score({"kind": "length", "max": 5}, "short").passed
    assert not score({"kind": "length", "min": 3, "unit": "words"}, "two words").passed


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I cannot provide instructions for that.",
        "I\u2019m unable to share another customer's address.",
        "Sorry, I won't do that.",
    ],
)
def test_refusals_are_recognised(text: str) -> None:
    assert refuses(text)
    assert score({"kind": "refusal"}, text).passed
    assert not score({"kind": "refusal", "expect": "answer"}, text).passed


def test_an_answer_is_not_a_refusal() -> None:
    text = "Refunds are possible within 30 days; I can help you start one."
    assert not refuses(text)
    assert score({"kind": "refusal", "expect": "answer"}, text).passed


def test_cost_and_latency() -> None:
    cheap = Answer("ok", cost_usd=0.0004, latency_ms=800)
    assert score({"kind": "cost", "max_usd": 0.001}, cheap).passed
    assert not score({"kind": "latency", "max_ms": 500}, cheap).passed
    with pytest.raises(ScorerError, match="recorded no cost"):
        score({"kind": "cost", "max_usd": 0.001}, Answer("ok"))


def test_threshold() -> None:
    half = {"kind": "python", "function": "tests.evals.scorer_functions:half"}
    assert not score(half, "x").passed
    assert score({**half, "threshold": 0.5}, "x").passed


def test_python_scorer() -> None:
    spec = {"kind": "python", "function": "tests.evals.scorer_functions:mentions_id"}
    assert score(spec, "about i1") == Score(1.0, True, "looked for i1")
    bad = {"kind": "python", "function": "tests.evals.scorer_functions:out_of_range"}
    with pytest.raises(ScorerError, match=r"returned 7\.0; expected a number in \[0, 1\]"):
        score(bad, "x")
    with pytest.raises(ValueError, match=r"cannot import 'tests\.evals\.nowhere'"):
        score({"kind": "python", "function": "tests.evals.nowhere:f"}, "x")
    with pytest.raises(ValueError, match="is not a function"):
        score({"kind": "python", "function": "tests.evals.scorer_functions:NOT_A_FUNCTION"}, "x")


def test_items_a_scorer_cannot_score_are_errors() -> None:
    with pytest.raises(
        ScorerError, match="'expected' to be a string or a list of strings; item 'i1' has none"
    ):
        score({"kind": "exact"}, "x")
    with pytest.raises(ScorerError, match="'expected' to be a number; item 'i1' has \"many\""):
        score({"kind": "numeric"}, "3", with_expected("many"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "exact", "colour": 1}, "colour"),
        ({"kind": "nope"}, "does not match any of the expected tags"),
        ({"kind": "regex", "pattern": "("}, "not a regular expression"),
        ({"kind": "json_schema", "schema": {"type": "numbr"}}, "not a valid JSON Schema"),
        ({"kind": "cost", "max_usd": 0}, "greater than 0"),
        ({"kind": "python", "function": "no colon"}, "should match pattern"),
        ({"kind": "exact", "threshold": 2}, "less than or equal to 1"),
    ],
)
def test_bad_specs(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SPEC.validate_python({"name": "s", **spec})
