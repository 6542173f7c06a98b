"""`guardrails:`: a guardrail policy's input, output and session checks, parsed strictly
(docs/guardrails.md); the gateway's default and each route version's."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from trimtab.config.strict import Strict

PII_ENTITIES = ("email", "phone", "credit_card", "iban", "ssn", "ip", "api_key", "jwt")
GuardrailAction = Literal["redact", "block", "flag"]


def _check_patterns(patterns: list[str], key: str) -> None:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{key}[{i}]: invalid regex '{pattern}': {exc}") from None


class PiiGuardConfig(Strict):
    action: GuardrailAction = "redact"
    entities: list[str] | None = None  # None: every structured type (PII_ENTITIES)
    regions: list[str] = Field(default_factory=lambda: ["US"])  # national phone formats

    @model_validator(mode="after")
    def _known(self) -> PiiGuardConfig:
        for i, entity in enumerate(self.entities or []):
            if entity not in PII_ENTITIES:
                raise ValueError(
                    f"entities[{i}]: unknown entity '{entity}' (known: {', '.join(PII_ENTITIES)})"
                )
        for i, region in enumerate(self.regions):
            if re.fullmatch(r"[A-Z]{2}", region) is None:
                raise ValueError(
                    f"regions[{i}]: '{region}' is not a region code (two capitals: US, GB, DE)"
                )
        return self


class InjectionGuardConfig(Strict):
    action: Literal["block", "flag"] = "block"
    threshold: float = Field(default=0.5, gt=0, le=1)  # the score at which a rule fires


class JsonSchemaGuardConfig(Strict):
    schema_: dict[str, Any] = Field(alias="schema")
    on_fail: Literal["retry_once", "block", "flag"] = "flag"

    @model_validator(mode="after")
    def _valid_schema(self) -> JsonSchemaGuardConfig:
        import jsonschema  # only when a policy has a schema

        try:
            jsonschema.validators.validator_for(self.schema_).check_schema(self.schema_)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise ValueError(f"schema: invalid JSON Schema at {where}: {exc.message}") from None
        return self


class InputGuardrailsConfig(Strict):
    pii: PiiGuardConfig | None = None
    injection: InjectionGuardConfig | None = None
    max_input_tokens: int | None = Field(default=None, ge=1)
    deny: list[str] = Field(default_factory=list)  # regexes; a match blocks

    @model_validator(mode="after")
    def _patterns(self) -> InputGuardrailsConfig:
        _check_patterns(self.deny, "deny")
        return self


class OutputGuardrailsConfig(Strict):
    pii: PiiGuardConfig | None = None
    json_schema: JsonSchemaGuardConfig | None = None
    deny: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _patterns(self) -> OutputGuardrailsConfig:
        _check_patterns(self.deny, "deny")
        return self


class SessionGuardrailsConfig(Strict):
    """Ceilings per session id (docs/guardrails.md): runaway agent loops."""

    max_requests: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_identical_calls: int | None = Field(default=None, ge=1)
    ttl_s: float = Field(default=86_400.0, gt=0)  # a session's counters expire after this


class GuardrailsConfig(Strict):
    """A guardrail policy (docs/guardrails.md): the gateway's default, or a route version's."""

    mode: Literal["enforce", "shadow"] = "enforce"  # shadow: detect and record, change nothing
    input: InputGuardrailsConfig | None = None
    output: OutputGuardrailsConfig | None = None
    session: SessionGuardrailsConfig | None = None
