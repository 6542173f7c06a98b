"""A version's bundle: its model, parameters and message templates (pure).

The bundle is everything that shapes a route's behaviour. Its canonical form is JSON with
sorted keys and no spaces; its digest, the SHA-256 of those bytes, identifies the content:
the same bundle has the same digest wherever and whenever it is applied.

Templates use `{{name}}` (spaces inside the braces allowed); a name is letters, digits and
underscores. Rendering is a single pass: a value that itself holds `{{x}}` is inserted as
it is, never expanded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

ROLES = ("system", "user", "assistant")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(ValueError):
    """Text with a `{{` that does not open a valid placeholder."""


class VariableError(ValueError):
    """Template variables that cannot be rendered: missing, or of the wrong type."""


class MissingVariables(VariableError):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        quoted = ", ".join(f"'{n}'" for n in self.names)
        plural = "s" if len(self.names) > 1 else ""
        super().__init__(f"missing template variable{plural} {quoted}")


@dataclass(frozen=True, slots=True)
class Template:
    """Text split into literals (even indexes) and variable names (odd indexes)."""

    source: str
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str] = []
        at = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append(_literal(text, at, match.start()))
            parts.append(match.group(1))
            at = match.end()
        parts.append(_literal(text, at, len(text)))
        return cls(text, tuple(parts))

    @property
    def variables(self) -> tuple[str, ...]:
        """The variable names, in order of first appearance."""
        return tuple(dict.fromkeys(self.parts[1::2]))

    def render(self, values: Mapping[str, str]) -> str:
        if len(self.parts) == 1:
            return self.parts[0]
        return "".join(values[p] if i % 2 else p for i, p in enumerate(self.parts))


def _literal(text: str, start: int, end: int) -> str:
    piece = text[start:end]
    bad = piece.find("{{")
    if bad >= 0:
        at = start + bad
        close = text.find("}}", at)
        shown = text[at : close + 2] if 0 <= close < at + 60 else text[at : at + 30] + "..."
        raise TemplateError(
            f"'{shown}' is not a template variable: write {{{{name}}}}, a name of letters, "
            "digits and underscores ('{{' always opens a variable)"
        )
    return piece


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Bundle:
    """The model, its parameters and the messages of one version. Treat as immutable."""

    model: str
    params: Mapping[str, Any]
    messages: tuple[Message, ...]
    # the version's guardrail policy (config.GuardrailsConfig as JSON); None: the gateway's
    guardrails: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "params": dict(self.params),
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
        }
        if self.guardrails is not None:  # absent, not null: older digests stay the same
            out["guardrails"] = dict(self.guardrails)
        return out

    def canonical(self) -> bytes:
        """Sorted keys, no whitespace, UTF-8: equal bundles give equal bytes."""
        return orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)

    @cached_property
    def digest(self) -> str:
        """The SHA-256 of the canonical JSON, in hex."""
        return hashlib.sha256(self.canonical()).hexdigest()

    @cached_property
    def templates(self) -> tuple[Template, ...]:
        return tuple(Template.parse(m.content) for m in self.messages)

    @cached_property
    def variables(self) -> tuple[str, ...]:
        """Every template variable, in order of first appearance."""
        names = (v for t in self.templates for v in t.variables)
        return tuple(dict.fromkeys(names))

    @classmethod
    def from_json(cls, data: Any) -> Bundle:
        """A bundle from its stored JSON (written by `to_json`)."""
        if not isinstance(data, dict):
            raise ValueError("a bundle must be a JSON object")
        messages = tuple(Message(str(m["role"]), str(m["content"])) for m in data["messages"])
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError("a bundle's params must be an object")
        guardrails = data.get("guardrails")
        if guardrails is not None and not isinstance(guardrails, dict):
            raise ValueError("a bundle's guardrails must be an object")
        return cls(str(data["model"]), params, messages, guardrails)


def _text_of(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    kind = "null" if value is None else type(value).__name__
    raise VariableError(f"template variable '{name}' must be a string or a number, not {kind}")


def render(bundle: Bundle, variables: Mapping[str, Any]) -> list[dict[str, str]]:
    """The bundle's messages with every variable filled in.

    Raises MissingVariables naming each variable the templates use and `variables` lacks,
    and VariableError for a value that is not a string or a number. Variables the
    templates do not use are ignored (an app may send the union of several versions' own).
    """
    missing = [name for name in bundle.variables if name not in variables]
    if missing:
        raise MissingVariables(missing)
    values = {name: _text_of(name, variables[name]) for name in bundle.variables}
    return [
        {"role": m.role, "content": t.render(values)}
        for m, t in zip(bundle.messages, bundle.templates, strict=True)
    ]
