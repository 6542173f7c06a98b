"""Declarations of the control-plane API's endpoints, which the handlers parse with.

An `Endpoint` names an operation's method and path, the roles that may call it, its
path and query parameters (each with its JSON Schema and the reader that turns the raw
text into a value, or a 400 naming it), its JSON body (a TypedDict of api/models.py,
its byte limit) and its response shape (a TypedDict of api/views.py). A handler reads a
parameter with `endpoint.arg(request, name)` and its body with `await
endpoint.json(request)`, so what it accepts is what the declaration says; `api/openapi.py`
turns the same declarations into the OpenAPI document served at /api/openapi.json.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.routing import Route

from trimtab.api.params import (
    MAX_BODY_BYTES,
    MAX_WINDOW,
    NUL,
    NUL_MESSAGE,
    bad_param,
    json_object,
    parse_int,
    parse_status,
    parse_time,
    parse_window,
)

Where = Literal["query", "path"]
Reader = Callable[[str | None], Any]

_NUMBER = re.compile(r"^v?(\d{1,9})$")


def parse_version(name: str, value: str | None) -> int | None:
    """'2' or 'v2' -> 2; None when absent or empty."""
    if value is None or value == "":
        return None
    match = _NUMBER.match(value)
    if match is None or int(match.group(1)) < 1:
        raise bad_param(name, f"'{value}' is not a version like v2 or 2")
    return int(match.group(1))


@dataclass(frozen=True, slots=True)
class Param:
    """A path or query parameter: its schema for the document, its reader for the handler
    (given the raw text, None when the parameter is absent)."""

    name: str
    where: Where
    description: str
    schema: Mapping[str, Any]
    read: Reader

    def raw(self, request: Request) -> str | None:
        if self.where == "path":
            value: str | None = request.path_params.get(self.name)
            return value
        return request.query_params.get(self.name)

    def of(self, request: Request) -> Any:
        """This parameter of `request`, read (a 400 naming it when it is not valid)."""
        return self.read(self.raw(request))


def text(name: str, description: str, *, where: Where = "query", keep_empty: bool = False) -> Param:
    """A free string; an empty one reads as None unless `keep_empty` (`?tenant=` means
    the shared routes). A NUL in it is a 400: the store could not compare it."""

    def read(value: str | None) -> str | None:
        if value is not None and NUL in value:
            raise bad_param(name, NUL_MESSAGE)
        return value if keep_empty else (value or None)

    return Param(name, where, description, {"type": "string"}, read)


def integer(name: str, description: str, *, default: int, low: int, high: int) -> Param:
    return Param(
        name,
        "query",
        description,
        {"type": "integer", "minimum": low, "maximum": high, "default": default},
        lambda v: parse_int(name, v, default, low, high),
    )


def time(name: str, description: str) -> Param:
    return Param(
        name,
        "query",
        f"{description}: ISO 8601 (naive means UTC) or Unix seconds",
        {"type": "string", "examples": ["2026-12-01T09:00:00Z", "1764579600"]},
        lambda v: parse_time(name, v),
    )


def window(default: str, description: str) -> Param:
    return Param(
        "window",
        "query",
        f"{description}: a duration like 15m, 1h, 24h or 7d, at most {MAX_WINDOW.days}d",
        {"type": "string", "pattern": r"^[0-9]+[smhd]$", "default": default},
        lambda v: parse_window(v, default),
    )


def choice(name: str, description: str, options: Collection[str], default: str) -> Param:
    listed = tuple(options)

    def read(value: str | None) -> str:
        chosen = value or default
        if chosen not in listed:
            raise bad_param(name, f"'{chosen}' is not one of {', '.join(listed)}")
        return chosen

    return Param(
        name,
        "query",
        description,
        {"type": "string", "enum": list(listed), "default": default},
        read,
    )


def status(description: str) -> Param:
    return Param(
        "status",
        "query",
        description,
        {"type": "string", "pattern": r"^(error|ok|[0-9]{1,9})$", "examples": ["error", "429"]},
        parse_status,
    )


def version(name: str, description: str, *, where: Where = "query", says: str = "") -> Param:
    """A version, 2 or v2; an error names it `says` (default: its name)."""
    return Param(
        name,
        where,
        description,
        {"type": "string", "pattern": r"^v?[0-9]{1,9}$", "examples": ["v2", "2"]},
        lambda v: parse_version(says or name, v),
    )


def enum(name: str, description: str, options: Collection[str], *, where: Where) -> Param:
    """A value from `options`; the handler says what another value means (no reader check)."""
    return Param(name, where, description, {"type": "string", "enum": list(options)}, lambda v: v)


@dataclass(frozen=True, slots=True)
class Body:
    """A JSON object body: the fields of `shape` (a TypedDict), at most `max_bytes`."""

    shape: type[Any]
    max_bytes: int = MAX_BODY_BYTES
    allow_empty: bool = False  # an empty body reads as {}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.shape.__annotations__)


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API. `roles` None: no key needed."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    name: str  # the operationId
    tag: str
    summary: str
    roles: frozenset[str] | None
    response: type[Any]
    status: int = 200
    params: tuple[Param, ...] = ()
    body: Body | None = None
    errors: tuple[int, ...] = ()  # besides those every operation of its kind may answer
    description: str = ""
    # the success answer's; application/x-ndjson: `response` is the shape of one line
    media_type: str = "application/json"
    _by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        missing = set(re.findall(r"{(\w+)}", self.path)) - {
            p.name for p in self.params if p.where == "path"
        }
        if missing:
            raise ValueError(f"{self.path}: path parameters {sorted(missing)} are not declared")

    def arg(self, request: Request, name: str) -> Any:
        """The parameter `name`, read as its declaration says (a 400 naming it if not)."""
        return self._by_name[name].of(request)

    async def json(self, request: Request) -> dict[str, Any]:
        """The body as a JSON object with only the declared fields, within the size limit."""
        body = self.body
        assert body is not None, f"{self.name} declares no body"
        return await json_object(
            request, max_bytes=body.max_bytes, fields=body.fields, allow_empty=body.allow_empty
        )

    def route(self, handler: Callable[[Request], Any]) -> DeclaredRoute:
        return DeclaredRoute(self, handler)

    def error_statuses(self) -> list[int]:
        """Every status other than success this operation may answer."""
        out = set(self.errors)
        if self.params or self.body is not None:
            out.add(400)
        if self.roles is not None:
            out |= {401, 403, 503}  # 503: the key store out of reach for longer than allowed
        if self.body is not None:
            out.add(413)
        return sorted(out)


class DeclaredRoute(Route):
    """A Starlette route that carries its declaration, for the OpenAPI document."""

    def __init__(self, declaration: Endpoint, handler: Callable[[Request], Any]) -> None:
        super().__init__(declaration.path, handler, methods=[declaration.method])
        self.declaration = declaration
