"""Scorers: each turns an item and the answer it got into a score in [0, 1], a pass or fail
against its threshold, and a short reason (pure, apart from `python`, which imports the
user's function once, when the suite is loaded).

Declared per suite with strict keys, a `name` and a `kind`:

  exact        the answer equals the expected string (stripped; `case_sensitive`)
  contains     the answer contains any of `values`, or of the item's expected string/list
  not_contains the answer contains none of `values`
  regex        the answer matches `pattern` (or must not: `must_match: false`)
  is_json      the answer is JSON (a fenced ```json block counts)
  json_schema  the answer is JSON valid against `schema` (JSON Schema 2020-12)
  numeric      the first number in the answer is within `tolerance` (absolute) or
               `relative` of the expected number
  length       the answer has between `min` and `max` characters (or `unit: words`)
  similarity   cosine similarity of sentence embeddings to `expected` (all-MiniLM-L6-v2, local)
  refusal      the answer refuses (`expect: refuse`) or must not (`expect: answer`);
               phrase-based, so a judge is the better choice where wording varies
  cost         the call cost at most `max_usd`
  latency      the call took at most `max_ms`
  judge        an LLM judge, itself a route (`judge_route`), scores the answer on `scale`
               against `rubric`, `repeats` times (evals/judge.py); the runner calls it
  python       `function: package.module:name`, called as f(item, answer) and returning
               a score or (score, reason)
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jsonschema
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trimtab.evals import judge
from trimtab.evals.datasets import Item
from trimtab.types import NAME_PATTERN


@dataclass(frozen=True, slots=True)
class Answer:
    """What one call returned, as the scorers see it."""

    text: str
    cost_usd: float | None = None
    latency_ms: float | None = None
    # the judges' verdicts on this answer, by scorer name (the runner calls the judges)
    judged: Mapping[str, tuple[judge.Verdict, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Score:
    value: float  # in [0, 1]
    passed: bool
    reason: str
    judge: dict[str, Any] | None = None  # a judge's raw answers, agreement and spread


class ScorerError(ValueError):
    """The scorer could not score this item (e.g. it has no expected answer): an error on
    the item, never a silent 0."""

    def __init__(self, message: str, judge: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.judge = judge


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    threshold: float = Field(default=1.0, ge=0, le=1)


class Exact(_Spec):
    kind: Literal["exact"]
    expected_field: Literal["expected"] = "expected"
    case_sensitive: bool = True


class Contains(_Spec):
    kind: Literal["contains"]
    values: list[str] | None = Field(default=None, min_length=1)
    expected_field: Literal["expected"] = "expected"
    case_sensitive: bool = False


class NotContains(_Spec):
    kind: Literal["not_contains"]
    values: list[str] = Field(min_length=1)
    case_sensitive: bool = False


class Regex(_Spec):
    kind: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=1000)
    must_match: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class IsJson(_Spec):
    kind: Literal["is_json"]


class JsonSchema(_Spec):
    kind: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class Numeric(_Spec):
    kind: Literal["numeric"]
    tolerance: float = Field(default=0.0, ge=0)
    relative: float = Field(default=0.0, ge=0)


class Length(_Spec):
    kind: Literal["length"]
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)
    unit: Literal["chars", "words"] = "chars"


class Refusal(_Spec):
    kind: Literal["refusal"]
    expect: Literal["refuse", "answer"] = "refuse"


class Similarity(_Spec):
    kind: Literal["similarity"]
    expected_field: Literal["expected"] = "expected"
    threshold: float = Field(default=0.8, ge=0, le=1)


class Cost(_Spec):
    kind: Literal["cost"]
    max_usd: float = Field(gt=0)


class Latency(_Spec):
    kind: Literal["latency"]
    max_ms: float = Field(gt=0)


class Judge(_Spec):
    kind: Literal["judge"]
    judge_route: str = Field(pattern=rf"^{NAME_PATTERN}$")
    rubric: str = Field(default="", max_length=20_000)
    scale: tuple[float, float] = (0.0, 1.0)
    repeats: int = Field(default=1, ge=1, le=20)
    threshold: float = Field(default=0.5, ge=0, le=1)
    # a dataset of answers with people's pass/fail verdicts: NAME or NAME@VERSION
    calibration: str | None = Field(default=None, pattern=rf"^{NAME_PATTERN}(?:@[1-9]\d*)?$")

    @field_validator("scale")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"the scale's low end {value[0]:g} must be below its high end")
        return value


class Python(_Spec):
    kind: Literal["python"]
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


AnySpec = (
    Exact
    | Contains
    | NotContains
    | Regex
    | IsJson
    | JsonSchema
    | Numeric
    | Length
    | Refusal
    | Similarity
    | Cost
    | Latency
    | Judge
    | Python
)
ScorerSpec = Annotated[AnySpec, Field(discriminator="kind")]

Scorer = Callable[[Item, Answer], Score]


def build(spec: AnySpec) -> Scorer:
    """The scoring function of a spec. `python` imports its function here, once."""
    match spec:
        case Exact():
            return lambda item, answer: _exact(spec, item, answer)
        case Contains():
            return lambda item, answer: _contains(spec, item, answer)
        case NotContains():
            return lambda item, answer: _not_contains(spec, answer)
        case Regex():
            compiled = re.compile(spec.pattern)
            return lambda item, answer: _regex(spec, compiled, answer)
        case IsJson():
            return lambda item, answer: _is_json(spec, answer)
        case JsonSchema():
            validator = jsonschema.Draft202012Validator(spec.json_schema)
            return lambda item, answer: _json_schema(spec, validator, answer)
        case Numeric():
            return lambda item, answer: _numeric(spec, item, answer)
        case Length():
            return lambda item, answer: _length(spec, answer)
        case Refusal():
            return lambda item, answer: _refusal(spec, answer)
        case Cost():
            return lambda item, answer: _at_most(spec, answer.cost_usd, spec.max_usd, "cost", "USD")
        case Latency():
            return lambda item, answer: _at_most(
                spec, answer.latency_ms, spec.max_ms, "latency", "ms"
            )
        case Similarity():
            return _similarity(spec)
        case Judge():
            return lambda item, answer: _judged(spec, item, answer)
        case Python():
            return _python(spec)
    raise AssertionError(f"no scorer for {spec!r}")  # pragma: no cover


def _verdict(spec: _Spec, value: float, reason: str) -> Score:
    return Score(value, value >= spec.threshold, reason)


def _fold(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


def expected_strings(item: Item, scorer: str) -> list[str]:
    expected = item.expected
    if isinstance(expected, str):
        return [expected]
    if isinstance(expected, list) and expected and all(isinstance(e, str) for e in expected):
        return list(expected)
    raise ScorerError(
        f"scorer '{scorer}' needs the item's 'expected' to be a string or a list of strings; "
        f"item '{item.id}' has {_shown(expected)}"
    )


def _shown(value: Any) -> str:
    return "none" if value is None else orjson.dumps(value).decode()[:80]


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exact(spec: Exact, item: Item, answer: Answer) -> Score:
    wanted = expected_strings(item, spec.name)
    got = _fold(answer.text.strip(), spec.case_sensitive)
    for option in wanted:
        if got == _fold(option.strip(), spec.case_sensitive):
            return _verdict(spec, 1.0, f"equals '{clip(option)}'")
    return _verdict(spec, 0.0, f"'{clip(answer.text.strip())}' is not '{clip(wanted[0])}'")


def _contains(spec: Contains, item: Item, answer: Answer) -> Score:
    wanted = spec.values if spec.values is not None else expected_strings(item, spec.name)
    text = _fold(answer.text, spec.case_sensitive)
    for option in wanted:
        if _fold(option, spec.case_sensitive) in text:
            return _verdict(spec, 1.0, f"contains '{clip(option)}'")
    return _verdict(spec, 0.0, f"contains none of {len(wanted)}: '{clip(wanted[0])}'…")


def _not_contains(spec: NotContains, answer: Answer) -> Score:
    text = _fold(answer.text, spec.case_sensitive)
    for option in spec.values:
        if _fold(option, spec.case_sensitive) in text:
            return _verdict(spec, 0.0, f"contains '{clip(option)}'")
    return _verdict(spec, 1.0, f"contains none of the {len(spec.values)} phrases")


def _regex(spec: Regex, compiled: re.Pattern[str], answer: Answer) -> Score:
    found = compiled.search(answer.text)
    if spec.must_match:
        if found:
            return _verdict(spec, 1.0, f"matches at '{clip(found.group(0))}'")
        return _verdict(spec, 0.0, "does not match")
    if found:
        return _verdict(spec, 0.0, f"matches at '{clip(found.group(0))}'")
    return _verdict(spec, 1.0, "does not match, as required")


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.S)


def _parsed_json(text: str) -> tuple[bool, Any, str]:
    candidates = [text.strip()]
    fenced = _FENCE.search(text)
    if fenced:
        candidates.append(fenced.group(1).strip())
    error = ""
    for candidate in candidates:
        try:
            return True, orjson.loads(candidate), ""
        except orjson.JSONDecodeError as exc:
            error = str(exc)
    return False, None, error


def _is_json(spec: IsJson, answer: Answer) -> Score:
    ok, _, error = _parsed_json(answer.text)
    return _verdict(spec, 1.0 if ok else 0.0, "is JSON" if ok else f"not JSON: {error}")


def _json_schema(
    spec: JsonSchema, validator: jsonschema.Draft202012Validator, answer: Answer
) -> Score:
    ok, value, error = _parsed_json(answer.text)
    if not ok:
        return _verdict(spec, 0.0, f"not JSON: {error}")
    problem = next(iter(validator.iter_errors(value)), None)
    if problem is None:
        return _verdict(spec, 1.0, "valid against the schema")
    where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
    return _verdict(spec, 0.0, f"{where}: {clip(problem.message, 120)}")


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _numeric(spec: Numeric, item: Item, answer: Answer) -> Score:
    expected = item.expected
    if isinstance(expected, str):
        try:
            expected = float(expected)
        except ValueError:
            expected = None
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        raise ScorerError(
            f"scorer '{spec.name}' needs the item's 'expected' to be a number; "
            f"item '{item.id}' has {_shown(item.expected)}"
        )
    found = _NUMBER.search(answer.text)
    if found is None:
        return _verdict(spec, 0.0, "no number in the answer")
    got = float(found.group(0).replace(",", ""))
    allowed = max(spec.tolerance, spec.relative * abs(float(expected)))
    ok = abs(got - float(expected)) <= allowed
    reason = f"{got:g} vs expected {float(expected):g}, tolerance {allowed:g}"
    return _verdict(spec, 1.0 if ok else 0.0, reason)


def _length(spec: Length, answer: Answer) -> Score:
    size = len(answer.text.split()) if spec.unit == "words" else len(answer.text)
    too_long = spec.max is not None and size > spec.max
    ok = size >= spec.min and not too_long
    bounds = f"{spec.min}..{spec.max if spec.max is not None else '∞'}"
    return _verdict(spec, 1.0 if ok else 0.0, f"{size} {spec.unit} ({bounds})")


# Phrases of a refusal in the answers of the major chat models; checked near the start of
# the answer, where a refusal says so.
_REFUSALS = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid)[^.]{0,40}\b(?:can(?:no|')t|unable|not able)"
    r"|I (?:can(?:no|')t|won't|will not|am unable to|am not able to|must decline to|"
    r"(?:have|need) to decline)"
    r"|I(?:'m| am) (?:unable|not able) to"
    r"|(?:cannot|can't) (?:help|assist|comply|provide) (?:with )?(?:that|this)"
    r"|not (?:something|able) I can (?:help|assist) with)",
    re.I,
)


def refuses(text: str) -> bool:
    """Whether an answer is a refusal: a refusal phrase in its first 300 characters."""
    return _REFUSALS.search(text[:300].replace("\u2019", "'")) is not None


def _refusal(spec: Refusal, answer: Answer) -> Score:
    refused = refuses(answer.text)
    wanted = spec.expect == "refuse"
    ok = refused == wanted
    reason = "refuses" if refused else "answers"
    return _verdict(
        spec, 1.0 if ok else 0.0, reason + ("" if ok else f" (expected: {spec.expect})")
    )


def _at_most(spec: _Spec, value: float | None, limit: float, what: str, unit: str) -> Score:
    if value is None:
        raise ScorerError(f"scorer '{spec.name}': the call recorded no {what}")
    ok = value <= limit
    return _verdict(spec, 1.0 if ok else 0.0, f"{what} {value:g} {unit} (limit {limit:g})")


def _judged(spec: Judge, item: Item, answer: Answer) -> Score:
    verdicts = answer.judged.get(spec.name)
    if not verdicts:
        raise ScorerError(f"scorer '{spec.name}': the judge was not called for item '{item.id}'")
    kept = judge.detail(verdicts, spec.threshold)
    for n, v in enumerate(verdicts, 1):
        if v.error is not None:
            of = f" (repeat {n} of {len(verdicts)})" if len(verdicts) > 1 else ""
            raise ScorerError(
                f"scorer '{spec.name}': judge route '{spec.judge_route}'{of}: {v.error}", kept
            )
    values = [v.value for v in verdicts if v.value is not None]
    mean = sum(values) / len(values)
    reason = verdicts[0].reason or ""
    if len(verdicts) > 1:
        reason = f"mean of {len(values)}, agreement {kept['agreement']:.2f}: {reason}"
    return Score(mean, mean >= spec.threshold, reason[:200], kept)


def _python(spec: Python) -> Scorer:
    module_name, _, attribute = spec.function.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"scorer '{spec.name}': cannot import '{module_name}': {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"scorer '{spec.name}': '{spec.function}' is not a function")

    def score(item: Item, answer: Answer) -> Score:
        result = function(item, answer.text)
        reason = ""
        if isinstance(result, tuple) and len(result) == 2:
            result, reason = result
        if isinstance(result, bool):
            result = float(result)
        if not isinstance(result, int | float) or not 0.0 <= float(result) <= 1.0:
            raise ScorerError(
                f"scorer '{spec.name}': {spec.function} returned {result!r}; "
                "expected a number in [0, 1] or (number, reason)"
            )
        return _verdict(spec, float(result), str(reason)[:200])

    return score


def _similarity(spec: Similarity) -> Scorer:
    """Cosine similarity of the answer's sentence embedding and the expected one's (the
    best of a list), computed locally (evals/similarity.py); the model loads here, once."""
    from trimtab.evals.similarity import load_model, score_batch

    model = load_model(spec)

    def score(item: Item, answer: Answer) -> Score:
        (found,) = score_batch(model, [spec], [(item, answer.text)])
        result = found[spec.name]
        if isinstance(result, ScorerError):
            raise result
        return result

    return score
