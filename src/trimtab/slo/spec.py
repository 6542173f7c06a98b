"""The `slos:` section of an applied file, parsed strictly (pure): every error names the
file, the SLO and the key.

```yaml
slos:
  support-availability:
    route: support-answer              # or model: / tenant: / feature:, alone or combined
    sli: {kind: availability}          # good = not 5xx; 4xx and 499 counted in neither
    objective: 0.999
    window: 30d                        # rolling: 7d, 28d or 30d
  support-latency:
    route: support-answer
    sli: {kind: latency, threshold_ms: 2000, of: ttft}   # of: total (default) | ttft
    objective: 0.95
  support-guardrails:
    route: support-answer
    sli: {kind: guardrail}             # good = no guardrail fired on the request
    objective: 0.99
  support-refusals:
    route: support-answer
    sli: {kind: refusal}               # good = an answer (2xx) the model did not refuse
    objective: 0.98
  support-quality:
    route: support-answer
    sli: {kind: negative_feedback}     # good = an answer without negative feedback
    objective: 0.97
  support-cost:
    route: support-answer
    sli: {kind: cost, ceiling_usd: 0.02}   # good = an answer that cost at most $0.02
    objective: 0.99
  support-session-cost:
    route: support-answer
    sli: {kind: session_cost, ceiling_usd: 0.50}   # good = a session that cost at most $0.50
    objective: 0.99
  support-judged:
    route: support-answer
    sli: {kind: eval_score, suite: support-live, scorer: helpful, threshold: 0.7}
    objective: 0.95                    # good = an online score at or above 0.7
    # the suite: the SLO's tenant's own of that name if it has one, else the shared one;
    # `suite_scope: shared` or `suite_scope: tenant` (the SLO's tenant's) says which
    alerting:
      min_events: 50                   # default: per rule, see burn.auto_min_events
      windows:                         # default: the workbook's, scaled to the window
        - {severity: page, long: 1h, short: 5m, factor: 14.4}
```
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trimtab.bounds import exceeds_depth, safe_load_yaml, too_deep_message, validation_problems
from trimtab.durations import parse_duration
from trimtab.slo.burn import AlertRule, scaled_rules
from trimtab.types import name_problem

# the sections one applied file may hold; each is parsed by its own package
SECTIONS = ("routes", "evals", "slos")
WINDOWS = {"7d": 7 * 24 * 60, "28d": 28 * 24 * 60, "30d": 30 * 24 * 60}
# error classes the rollups can tell apart: they keep the status code, not error.type
ERROR_CLASSES: dict[str, str] = {
    "timeout": "504: the provider did not answer in time",
    "bad_gateway": "502: unreachable, invalid answer, stream cut, provider auth or error",
    "unavailable": "503: the provider or every deployment (breakers open) unavailable",
    "rate_limited": "429: a provider's or trimtab's own rate limit",
    "server": "any 5xx",
}


class SlosError(ValueError):
    """An `slos:` section that cannot be applied; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AvailabilitySpec(_Strict):
    kind: Literal["availability"]


class LatencySpec(_Strict):
    kind: Literal["latency"]
    threshold_ms: float = Field(gt=0, le=3_600_000)
    of: Literal["total", "ttft"] = "total"


class ErrorRateSpec(_Strict):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    kind: Literal["error_rate"]
    error_class: Literal["timeout", "bad_gateway", "unavailable", "rate_limited", "server"] = Field(
        alias="class"
    )


class GuardrailSpec(_Strict):
    kind: Literal["guardrail"]


class NegativeFeedbackSpec(_Strict):
    kind: Literal["negative_feedback"]


class RefusalSpec(_Strict):
    kind: Literal["refusal"]


class CostSpec(_Strict):
    kind: Literal["cost"]
    ceiling_usd: float = Field(gt=0, le=1_000_000)


class SessionCostSpec(_Strict):
    kind: Literal["session_cost"]
    ceiling_usd: float = Field(gt=0, le=1_000_000)


SCORE_BINS = 100  # the eval-score rollups keep values in hundredths (evals/score_rollups.py)


def score_bin(threshold: float) -> int | None:
    """The hundredths `threshold` is, or None unless it is a multiple of 0.01 in [0, 1]."""
    hundredths = threshold * SCORE_BINS
    k = round(hundredths)
    if not 0 <= threshold <= 1 or abs(hundredths - k) > 1e-6:
        return None
    return k


# which suite of its name an eval-score SLI means: the shared one, or its SLO's tenant's own
SuiteScope = Literal["shared", "tenant"]


class EvalScoreSpec(_Strict):
    kind: Literal["eval_score"]
    suite: str = Field(min_length=1, max_length=128)
    scorer: str = Field(min_length=1, max_length=64)
    threshold: float | None = None  # None: the scorer's own pass
    # None: the SLO's tenant's own suite of that name if it has one, else the shared one
    suite_scope: SuiteScope | None = None

    @field_validator("threshold")
    @classmethod
    def _hundredths(cls, value: float | None) -> float | None:
        if value is not None and score_bin(value) is None:
            raise ValueError(f"{value} is not a multiple of 0.01 in [0, 1]")
        return value


# what an SLO of these kinds may select by in a file (their own tables keep no more);
# the evaluator's candidate burn adds `version` where the table has it
FILE_SELECTORS: dict[str, frozenset[str]] = {
    "session_cost": frozenset({"route", "tenant", "feature"}),
    "eval_score": frozenset({"route", "tenant"}),
}


SliSpec = Annotated[
    AvailabilitySpec
    | LatencySpec
    | ErrorRateSpec
    | GuardrailSpec
    | NegativeFeedbackSpec
    | RefusalSpec
    | CostSpec
    | SessionCostSpec
    | EvalScoreSpec,
    Field(discriminator="kind"),
]
SliKind = Literal[
    "availability",
    "latency",
    "error_rate",
    "guardrail",
    "negative_feedback",
    "refusal",
    "cost",
    "session_cost",
    "eval_score",
]
SLI_KINDS: tuple[SliKind, ...] = get_args(SliKind)


class RuleSpec(_Strict):
    severity: Literal["page", "ticket"]
    long: str
    short: str
    factor: float = Field(gt=0)

    @field_validator("long", "short")
    @classmethod
    def _minutes(cls, value: str) -> str:
        span = parse_duration(value)
        if span is None or span.total_seconds() % 60 or span.total_seconds() < 60:
            raise ValueError(f"'{value}' is not a whole number of minutes (5m, 1h, 3d)")
        return value

    @model_validator(mode="after")
    def _order(self) -> RuleSpec:
        if _minutes_of(self.short) >= _minutes_of(self.long):
            raise ValueError("the short window must be shorter than the long one")
        return self


class AlertingSpec(_Strict):
    min_events: int | None = Field(default=None, ge=1)
    windows: list[RuleSpec] | None = Field(default=None, min_length=1)


class SloSpec(_Strict):
    route: str | None = Field(default=None, min_length=1, max_length=256)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    tenant: str | None = Field(default=None, min_length=1, max_length=128)
    feature: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=1000)
    sli: SliSpec
    objective: float = Field(gt=0, lt=1)
    window: Literal["7d", "28d", "30d"] = "30d"
    alerting: AlertingSpec = Field(default_factory=AlertingSpec)

    @model_validator(mode="after")
    def _consistent(self) -> SloSpec:
        if not any((self.route, self.model, self.tenant, self.feature)):
            raise ValueError("an SLO selects its traffic: give route, model, tenant or feature")
        allowed = FILE_SELECTORS.get(self.sli.kind)
        if allowed is not None:
            given = {k for k in ("route", "model", "tenant", "feature") if getattr(self, k)}
            if given - allowed:
                raise ValueError(
                    f"the {self.sli.kind} SLI selects by {' and '.join(sorted(allowed))} only, "
                    f"not {', '.join(sorted(given - allowed))}"
                )
        for rule in self.alerting.windows or ():
            if _minutes_of(rule.long) > WINDOWS[self.window]:
                raise ValueError(f"alerting window '{rule.long}' is longer than the SLO window")
        return self


class _SlosFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slos: dict[str, SloSpec]


def _minutes_of(text: str) -> int:
    span = parse_duration(text)
    assert span is not None  # checked by the field validator
    return int(span.total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class Selector:
    """Which requests an SLO judges; None matches any value."""

    route: str | None = None
    model: str | None = None
    tenant: str | None = None
    feature: str | None = None
    # the route version's label (`v3`): never from a file, the evaluator's canary burn only
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Sli:
    kind: SliKind
    threshold_ms: float | None = None  # latency
    of: Literal["total", "ttft"] = "total"  # latency
    error_class: str | None = None  # error_rate
    ceiling_usd: float | None = None  # cost, session_cost
    suite: str | None = None  # eval_score
    scorer: str | None = None  # eval_score
    score_threshold: float | None = None  # eval_score; None: the scorer's own pass
    suite_scope: SuiteScope | None = None  # eval_score; None: the tenant's own, else shared

    def describe(self) -> str:
        """`latency <= 2000 ms`, `cost <= $0.02`, `error_rate timeout`: the kind and its
        parameters, for people."""
        if self.kind == "latency":
            of = "" if self.of == "total" else " ttft"
            return f"latency{of} <= {self.threshold_ms:g} ms"
        if self.kind == "error_rate":
            return f"error_rate {self.error_class}"
        if self.kind == "cost":
            return f"cost <= ${self.ceiling_usd:g}"
        if self.kind == "session_cost":
            return f"session cost <= ${self.ceiling_usd:g}"
        if self.kind == "eval_score":
            at = "passed" if self.score_threshold is None else f">= {self.score_threshold:g}"
            whose = "" if self.suite_scope is None else f" ({self.suite_scope} suite)"
            return f"eval_score {self.suite}/{self.scorer} {at}{whose}"
        return self.kind


@dataclass(frozen=True, slots=True)
class SloDefinition:
    name: str
    selector: Selector
    sli: Sli
    objective: float
    window: str  # "30d"
    rules: tuple[AlertRule, ...]
    min_events: int | None  # None: per rule, burn.auto_min_events
    description: str | None = None

    @property
    def window_minutes(self) -> int:
        return WINDOWS[self.window]

    def to_json(self) -> dict[str, Any]:
        """The definition as an `slos:` entry: what is stored, and parsed again on read."""
        out: dict[str, Any] = {
            k: v
            for k, v in (
                ("route", self.selector.route),
                ("model", self.selector.model),
                ("tenant", self.selector.tenant),
                ("feature", self.selector.feature),
                ("description", self.description),
            )
            if v is not None
        }
        sli: dict[str, Any] = {"kind": self.sli.kind}
        if self.sli.kind == "latency":
            sli.update(threshold_ms=self.sli.threshold_ms, of=self.sli.of)
        elif self.sli.kind == "error_rate":
            sli["class"] = self.sli.error_class
        elif self.sli.kind in ("cost", "session_cost"):
            sli["ceiling_usd"] = self.sli.ceiling_usd
        elif self.sli.kind == "eval_score":
            sli.update(suite=self.sli.suite, scorer=self.sli.scorer)
            if self.sli.score_threshold is not None:
                sli["threshold"] = self.sli.score_threshold
            if self.sli.suite_scope is not None:
                sli["suite_scope"] = self.sli.suite_scope
        out.update(sli=sli, objective=self.objective, window=self.window)
        alerting: dict[str, Any] = {}
        if self.min_events is not None:
            alerting["min_events"] = self.min_events
        if self.rules != scaled_rules(self.window_minutes):
            alerting["windows"] = [
                {
                    "severity": r.severity,
                    "long": f"{r.long_minutes}m",
                    "short": f"{r.short_minutes}m",
                    "factor": r.factor,
                }
                for r in self.rules
            ]
        if alerting:
            out["alerting"] = alerting
        return out

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _definition(name: str, spec: SloSpec) -> SloDefinition:
    s = spec.sli
    if isinstance(s, LatencySpec):
        sli = Sli("latency", threshold_ms=float(s.threshold_ms), of=s.of)
    elif isinstance(s, ErrorRateSpec):
        sli = Sli("error_rate", error_class=s.error_class)
    elif isinstance(s, CostSpec | SessionCostSpec):
        sli = Sli(s.kind, ceiling_usd=float(s.ceiling_usd))
    elif isinstance(s, EvalScoreSpec):
        threshold = None if s.threshold is None else float(s.threshold)
        sli = Sli("eval_score", suite=s.suite, scorer=s.scorer, score_threshold=threshold,
                  suite_scope=s.suite_scope)  # fmt: skip
    elif isinstance(s, GuardrailSpec | NegativeFeedbackSpec | RefusalSpec):
        sli = Sli(s.kind)
    else:
        sli = Sli("availability")
    window = WINDOWS[spec.window]
    if spec.alerting.windows is None:
        rules = scaled_rules(window)
    else:
        rules = tuple(
            AlertRule(r.severity, _minutes_of(r.long), _minutes_of(r.short), float(r.factor))
            for r in spec.alerting.windows
        )
    return SloDefinition(
        name=name,
        selector=Selector(spec.route, spec.model, spec.tenant, spec.feature),
        sli=sli,
        objective=float(spec.objective),
        window=spec.window,
        rules=rules,
        min_events=spec.alerting.min_events,
        description=spec.description,
    )


def parse_slos(data: Any, source: str = "<slos>") -> list[SloDefinition]:
    """The SLOs of a loaded file's `slos:` section; SlosError with every problem.

    The file's other sections are the other packages' (`routes:`, `evals:`); any other
    top-level key is an error."""
    if not isinstance(data, dict) or "slos" not in data:
        raise SlosError([f"{source}: no 'slos' section"])
    if exceeds_depth(data):
        raise SlosError([f"{source}: {too_deep_message('the SLO data')}"])
    problems = [f"{source}: {key}: unknown key" for key in data if key not in SECTIONS]
    raw = data["slos"]
    if isinstance(raw, dict):
        if not raw:
            problems.append(f"{source}: slos: no SLOs are defined")
        for name in raw:
            problem = name_problem("SLO", name)
            if problem:
                problems.append(f"{source}: slos.{name}: {problem}")
    parsed: _SlosFile | None = None
    try:
        parsed = _SlosFile.model_validate({"slos": raw})
    except ValidationError as exc:
        problems.extend(_unkinded(p) for p in validation_problems(exc, source))
    if problems or parsed is None:
        raise SlosError(problems)
    return [_definition(name, spec) for name, spec in parsed.slos.items()]


def _unkinded(problem: str) -> str:
    """`slos.a.sli.latency.of` as the file spells it: `slos.a.sli.of` (pydantic names the
    union's member in the path)."""
    for kind in SLI_KINDS:
        problem = problem.replace(f".sli.{kind}.", ".sli.").replace(f".sli.{kind}:", ".sli:")
    return problem


def load_slos(text: str, source: str = "<slos>") -> list[SloDefinition]:
    """Parse the text of a file with an `slos:` section (YAML, of which JSON is a subset)."""
    try:
        data = safe_load_yaml(text)
    except yaml.YAMLError as exc:
        raise SlosError([f"{source}: invalid YAML: {exc}"]) from None
    return parse_slos(data, source)
