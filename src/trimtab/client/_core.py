"""The request and error layer shared by `Client` and `AsyncClient` (no I/O here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast
from urllib.parse import quote

import httpx

T = TypeVar("T")
Params = Mapping[str, str | int | float | bool | None]


class TrimtabError(Exception):
    """The server refused a call (``status``, ``code``, its ``message`` and ``request_id``),
    or could not be reached (``status`` None, ``code`` "unreachable")."""

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        request_id: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.param = param  # the parameter or field a 400 names


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` as ``cursor`` for the next (None: last)."""

    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: what to send and how to read the JSON answer."""

    method: str
    path: str
    decode: Callable[[Any], T]
    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def params(values: Params) -> dict[str, str | int | float | bool]:
    """Query parameters without the unset ones."""
    return {k: v for k, v in values.items() if v is not None}


def body(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body without the unset fields (the API's bodies are strict)."""
    return {k: v for k, v in values.items() if v is not None}


def segment(value: str) -> str:
    return quote(value, safe="")


def route_path(route: str, rest: str = "") -> str:
    return "/api/routes/" + segment(route) + (f"/{rest}" if rest else "")


def same(data: Any) -> Any:
    return data


def typed(_: type[T]) -> Callable[[Any], T]:
    """A decoder that takes the server's JSON as the TypedDict it is documented to be."""
    return lambda data: cast(T, data)


def listed(_: type[T]) -> Callable[[Any], list[T]]:
    """A decoder of ``{"data": [...]}``."""
    return lambda data: cast(list[T], data["data"])


def paged(_: type[T]) -> Callable[[Any], Page[T]]:
    """A decoder of ``{"data": [...], "next_cursor": ...}``."""
    return lambda data: Page(cast(list[T], data["data"]), data.get("next_cursor"))


def headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def unreachable(url: str, exc: Exception) -> TrimtabError:
    return TrimtabError(None, "unreachable", f"cannot reach trimtab at {url}: {exc}")


def incomplete(call: Call[Any], response: httpx.Response, exc: Exception) -> TrimtabError:
    """A streamed answer that broke off before its end (the server ended it, or the network)."""
    return TrimtabError(
        response.status_code,
        "incomplete",
        f"{call.method} {call.path}: the answer ended before its end ({exc}); what arrived "
        "is not the whole of it",
        response.headers.get("x-trimtab-request-id"),
    )


def answer(call: Call[T], response: httpx.Response) -> T:
    """The decoded answer, or the server's refusal as a TrimtabError."""
    try:
        data = response.json()
    except ValueError:
        data = None
    request_id = response.headers.get("x-trimtab-request-id")
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return_id = error.get("request_id") or request_id
            message = str(error.get("message") or response.reason_phrase)
            raise TrimtabError(
                response.status_code, error.get("code"), message, return_id, error.get("param")
            )
        text = response.text.strip() or response.reason_phrase
        raise TrimtabError(response.status_code, None, text, request_id)
    if data is None:
        raise TrimtabError(
            response.status_code,
            "not_json",
            f"{call.method} {call.path}: the server did not answer with JSON",
            request_id,
        )
    return call.decode(data)


class Runs(Protocol):
    """What a sync client's mixin of calls needs of its class: sending one call."""

    def _run(self, call: Call[T]) -> T: ...


class AsyncRuns(Protocol):
    """What an async client's mixin of calls needs of its class."""

    async def _run(self, call: Call[T]) -> T: ...
