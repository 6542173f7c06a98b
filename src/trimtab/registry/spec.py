"""The routes file, parsed strictly (pure): every error names the file, the route and the key.

```yaml
routes:
  support-answer:
    owner: support-ml@acme.example
    risk_tier: 2
    version:
      model: gpt-mock
      params: {temperature: 0.2, max_tokens: 400}
      messages:
        - role: system
          content: "You are Acme's support assistant. Policy: {{policy}}"
        - role: user
          content: "{{question}}"
```
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trimtab.bounds import exceeds_depth, safe_load_yaml, too_deep_message, validation_problems
from trimtab.config import BodiesMode, GuardrailsConfig
from trimtab.registry.bundle import Bundle, Message, Template, TemplateError
from trimtab.types import name_problem

PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "response_format",
)


class RoutesError(ValueError):
    """A routes file that cannot be applied; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MessageSpec(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class ParamsSpec(_Strict):
    """Parameters in the OpenAI chat vocabulary (mapped for Anthropic clients)."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    response_format: dict[str, Any] | None = None


class VersionSpec(_Strict):
    model: str = Field(min_length=1)
    params: ParamsSpec = Field(default_factory=ParamsSpec)
    messages: list[MessageSpec] = Field(min_length=1)
    # part of the version: a change of guardrails is a release (docs/guardrails.md)
    guardrails: GuardrailsConfig | None = None


class RouteStorageSpec(_Strict):
    """What the store keeps of this route's bodies (docs/data-protection.md)."""

    bodies: BodiesMode


class RouteSpec(_Strict):
    owner: str = Field(min_length=1, max_length=256)
    risk_tier: int = Field(ge=0, le=3)
    tenant: str | None = Field(default=None, min_length=1, max_length=128)
    storage: RouteStorageSpec | None = None  # the route's, like owner: not part of a version
    version: VersionSpec


class RoutesFile(_Strict):
    routes: dict[str, RouteSpec]


@dataclass(frozen=True, slots=True)
class RouteDefinition:
    """One route of a routes file: its metadata and the bundle of its version."""

    name: str
    owner: str
    risk_tier: int
    tenant: str | None  # None: not stated in the file
    bundle: Bundle
    storage_bodies: BodiesMode | None = None  # storage.bodies: None, the gateway's


def _bundle(version: VersionSpec) -> Bundle:
    params = version.params.model_dump(exclude_none=True)
    messages = tuple(Message(m.role, m.content) for m in version.messages)
    guardrails = version.guardrails
    if guardrails is None:
        return Bundle(version.model, params, messages)
    policy = guardrails.model_dump(mode="json", by_alias=True, exclude_none=True)
    return Bundle(version.model, params, messages, policy)


def _check(name: str, raw: Any, source: str, models: Collection[str] | None) -> list[str]:
    """The problems the schema does not see (an unknown model, message order, templates).

    Runs on the raw data, also when the schema found problems, so that one file's every
    problem is reported at once; what is not of the right type is the schema's to report."""
    where = f"{source}: routes.{name}"
    version = raw.get("version") if isinstance(raw, dict) else None
    if not isinstance(version, dict):
        return []
    problems: list[str] = []
    model = version.get("model")
    if models is not None and isinstance(model, str) and model and model not in models:
        known = ", ".join(sorted(models)) or "none"
        problems.append(
            f"{where}.version.model: unknown model '{model}' (configured on this gateway: {known})"
        )
    messages = version.get("messages")
    if not isinstance(messages, list):
        return problems
    seen_other = False
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if role == "system" and seen_other:
            problems.append(
                f"{where}.version.messages[{i}].role: system messages must come before "
                "user and assistant messages"
            )
        seen_other = seen_other or (isinstance(role, str) and role != "system")
        if not isinstance(content, str) or not content:
            continue
        try:
            Template.parse(content)
        except TemplateError as exc:
            problems.append(f"{where}.version.messages[{i}].content: {exc}")
    return problems


def parse_routes(
    data: Any, source: str = "<routes>", models: Collection[str] | None = None
) -> list[RouteDefinition]:
    """Validate loaded YAML/JSON data; `models` are the gateway's model names (None: any)."""
    if not isinstance(data, dict):
        raise RoutesError([f"{source}: the top level must be a mapping with the key 'routes'"])
    if exceeds_depth(data):  # a bundle is serialised: bound it before anything is built
        raise RoutesError([f"{source}: {too_deep_message('the routes data')}"])
    problems: list[str] = []
    raw_routes = data.get("routes")
    if isinstance(raw_routes, dict):
        if not raw_routes:
            problems.append(f"{source}: routes: no routes are defined")
        for name in raw_routes:
            problem = name_problem("route", name)
            if problem:
                problems.append(f"{source}: routes.{name}: {problem}")
    parsed: RoutesFile | None = None
    try:
        parsed = RoutesFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, source))
    if isinstance(raw_routes, dict):  # every problem at once, not only the schema's
        for name, raw in raw_routes.items():
            problems.extend(_check(str(name), raw, source, models))
    if problems or parsed is None:
        raise RoutesError(problems)
    return [
        RouteDefinition(
            name,
            spec.owner,
            spec.risk_tier,
            spec.tenant,
            _bundle(spec.version),
            spec.storage.bodies if spec.storage is not None else None,
        )
        for name, spec in parsed.routes.items()
    ]


def load_routes(
    text: str, source: str = "<routes>", models: Collection[str] | None = None
) -> list[RouteDefinition]:
    """Parse the text of a routes file (YAML, of which JSON is a subset)."""
    try:
        data = safe_load_yaml(text)  # no aliases, at most MAX_DEPTH levels
    except yaml.YAMLError as exc:
        raise RoutesError([f"{source}: invalid YAML: {exc}"]) from None
    return parse_routes(data, source, models)
