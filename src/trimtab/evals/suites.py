"""Eval suites, parsed strictly from the `evals:` section of an applied file (pure): every
error names the file, the suite and the key.

```yaml
evals:
  support-golden:
    route: support-answer              # or model: gpt-mock
    dataset: support-golden            # the newest version, or pinned: support-golden@3
    tags: [golden]
    scorers:
      - {name: correct, kind: contains, threshold: 1}
      - {name: short, kind: length, max: 600}
    gate:
      min_pass_rate: {correct: 0.90}   # an absolute floor on the candidate
      max_drop: {correct: 0.02}        # the largest tolerated drop against the baseline
      max_errors: 0.05                 # past this share of failed items: no verdict
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trimtab.bounds import validation_problems
from trimtab.evals.compare import DEFAULT_MAX_ERRORS, Gate
from trimtab.evals.scorers import AnySpec, ScorerSpec
from trimtab.types import NAME_PATTERN, name_problem

DATASET_REF = re.compile(rf"^(?P<name>{NAME_PATTERN})(?:@(?P<version>[1-9]\d*))?$")


class SuitesError(ValueError):
    """An `evals:` section that cannot be applied; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class GateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_pass_rate: dict[str, float] = Field(default_factory=dict)
    max_drop: dict[str, float] = Field(default_factory=dict)
    max_errors: float = Field(default=DEFAULT_MAX_ERRORS, ge=0, le=1)

    @model_validator(mode="after")
    def _shares(self) -> GateSpec:
        for key in ("min_pass_rate", "max_drop"):
            for scorer, value in getattr(self, key).items():
                if not 0 <= value <= 1:
                    raise ValueError(f"{key}.{scorer}: {value} is not a share between 0 and 1")
        return self


# the scorers a server runs on production answers: those that need no reference answer
# (a judge calls its route through the server's own gateway; a python scorer's module must
# be one the server's configuration names: evals.python_scorers)
ONLINE_KINDS = (
    "json_schema", "refusal", "regex", "not_contains", "is_json", "length", "judge", "python"
)  # fmt: skip
DEFAULT_ONLINE_TIMEOUT_S = 10.0


class OnlineSpec(BaseModel):
    """`online:` on a suite of a route: a share of the route's production answers scored
    in the background with the suite's reference-free scorers (evals/online.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample: float = Field(gt=0, le=1)
    scorers: list[str] | None = None  # default: every scorer of the suite
    max_per_minute: int = Field(default=600, ge=1, le=100_000)  # its own budget
    # the judges' recorded spend per UTC day past which they are not called (None: no cap)
    max_usd_per_day: float | None = Field(default=None, gt=0)
    # the longest a judge's call or a python scorer may take on one answer
    timeout_s: float = Field(default=DEFAULT_ONLINE_TIMEOUT_S, gt=0, le=300)


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str | None = None
    model: str | None = None
    dataset: str = Field(pattern=DATASET_REF.pattern)
    tags: list[str] = Field(default_factory=list)
    scorers: list[ScorerSpec] = Field(min_length=1)
    gate: GateSpec = Field(default_factory=GateSpec)
    online: OnlineSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SuiteSpec:
        if (self.route is None) == (self.model is None):
            raise ValueError("a suite runs against a route or a model: give one of them")
        names = [s.name for s in self.scorers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scorer name '{twice[0]}' is used twice")
        gated = set(self.gate.min_pass_rate) | set(self.gate.max_drop)
        unknown = sorted(gated - set(names))
        if unknown:
            raise ValueError(f"the gate names scorer '{unknown[0]}', which the suite does not have")
        if self.online is not None:
            if self.route is None:
                raise ValueError("online: scores a route's production traffic: give route:")
            by_name = {s.name: s for s in self.scorers}
            for name in self.online.scorers or list(by_name):
                scorer = by_name.get(name)
                if scorer is None:
                    raise ValueError(f"online.scorers: the suite has no scorer '{name}'")
                if scorer.kind not in ONLINE_KINDS:
                    raise ValueError(
                        f"online.scorers: '{name}' is a {scorer.kind} scorer; online scoring "
                        f"runs the scorers that need no reference answer: "
                        f"{', '.join(ONLINE_KINDS)} (name them in online.scorers)"
                    )
        return self


class _SuitesFile(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    evals: dict[str, SuiteSpec]


@dataclass(frozen=True, slots=True)
class Online:
    sample: float
    scorers: tuple[AnySpec, ...]
    max_per_minute: int
    max_usd_per_day: float | None = None
    timeout_s: float = DEFAULT_ONLINE_TIMEOUT_S

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sample": self.sample,
            "scorers": [s.name for s in self.scorers],
            "max_per_minute": self.max_per_minute,
        }
        if self.max_usd_per_day is not None:
            out["max_usd_per_day"] = self.max_usd_per_day
        if self.timeout_s != DEFAULT_ONLINE_TIMEOUT_S:
            out["timeout_s"] = self.timeout_s
        return out


@dataclass(frozen=True, slots=True)
class SuiteDefinition:
    name: str
    route: str | None
    model: str | None
    dataset: str
    dataset_version: int | None  # None: the newest
    tags: tuple[str, ...]
    scorers: tuple[AnySpec, ...]
    gate: Gate
    online: Online | None = None

    def to_json(self) -> dict[str, Any]:
        target = {"route": self.route} if self.route is not None else {"model": self.model}
        dataset = self.dataset + (
            "" if self.dataset_version is None else f"@{self.dataset_version}"
        )
        online = {} if self.online is None else {"online": self.online.to_json()}
        return {
            **online,
            **target,
            "dataset": dataset,
            "tags": list(self.tags),
            "scorers": [s.model_dump(by_alias=True, exclude_defaults=True) for s in self.scorers],
            "gate": {
                "min_pass_rate": dict(self.gate.min_pass_rate),
                "max_drop": dict(self.gate.max_drop),
                "max_errors": self.gate.max_errors,
            },
        }


def parse_suites(data: Any, source: str = "<evals>") -> list[SuiteDefinition]:
    """The suites of a loaded file's `evals:` section; SuitesError with every problem."""
    if not isinstance(data, dict) or "evals" not in data:
        raise SuitesError([f"{source}: no 'evals' section"])
    problems: list[str] = []
    raw = data["evals"]
    if isinstance(raw, dict):
        if not raw:
            problems.append(f"{source}: evals: no suites are defined")
        for name in raw:
            problem = name_problem("suite", name)
            if problem:
                problems.append(f"{source}: evals.{name}: {problem}")
    try:
        parsed = _SuitesFile.model_validate({"evals": raw})
    except ValidationError as exc:
        problems.extend(validation_problems(exc, source))
        parsed = None
    if problems or parsed is None:
        raise SuitesError(problems)
    out = []
    for name, spec in parsed.evals.items():
        ref = DATASET_REF.match(spec.dataset)
        assert ref is not None  # the field's pattern
        version = ref.group("version")
        online = None
        if spec.online is not None:
            names = spec.online.scorers or [s.name for s in spec.scorers]
            online = Online(
                sample=spec.online.sample,
                scorers=tuple(s for s in spec.scorers if s.name in names),
                max_per_minute=spec.online.max_per_minute,
                max_usd_per_day=spec.online.max_usd_per_day,
                timeout_s=spec.online.timeout_s,
            )
        out.append(
            SuiteDefinition(
                name=name,
                route=spec.route,
                model=spec.model,
                dataset=ref.group("name"),
                dataset_version=int(version) if version else None,
                tags=tuple(dict.fromkeys(spec.tags)),
                scorers=tuple(spec.scorers),
                gate=Gate(
                    min_pass_rate=dict(spec.gate.min_pass_rate),
                    max_drop=dict(spec.gate.max_drop),
                    max_errors=spec.gate.max_errors,
                ),
                online=online,
            )
        )
    return out
