"""The one error path of the app: exceptions that leave a handler become wire errors here.

Handlers raise, they do not answer errors themselves: a `DomainError` (the kind of failure,
from the code below) or a `GatewayError` (a status the API chose) becomes the error body of
the caller's wire format (OpenAI's on /api), with the request id in the header and the
body. A store outage is answered by `LastResort` (gateway/middleware.py), the same 503
`store_unavailable` on every endpoint; anything else unanticipated is its 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from trimtab.errors import DomainError, GatewayError, Unavailable, error_body, gateway_error
from trimtab.gateway.middleware import base_url_hint, wire_for
from trimtab.store.errors import store_unavailable
from trimtab.types import new_request_id

T = TypeVar("T")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_response(err: GatewayError, path: str, headers: Mapping[str, str]) -> Response:
    """`err` in the wire format of a caller of `path`, carrying a new request id."""
    rid = new_request_id()
    out = {"x-trimtab-request-id": rid}
    if err.retry_after:
        out["retry-after"] = err.retry_after
    body = error_body(err, wire_for(path, headers), rid)
    return Response(body, err.status, out, media_type="application/json")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc, request.url.path, request.headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(gateway_error(exc), request.url.path, request.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405, in the caller's wire format."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = f"{request.method} {request.url.path}: {exc.detail}"
    if exc.status_code == 404:  # a common base_url mistake says what to set instead
        hint = base_url_hint(request.url.path, str(request.base_url))
        detail = detail if hint is None else f"{detail}; {hint}"
    err = GatewayError(exc.status_code, code, detail)
    return error_response(err, request.url.path, request.headers)


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Any]]:
    """The app's handlers (Starlette `exception_handlers`): the error path of every handler."""
    return {
        DomainError: _domain_error,
        GatewayError: _gateway_error,
        HTTPException: _http_error,
    }


APPLY_ATTEMPTS = 3  # an apply that races another gateway's on the same names


async def apply_retrying(work: Callable[[], T], what: str) -> T:
    """Run an apply of `what` (say "SLOs") as a store change; when another gateway created
    the same names meanwhile (an IntegrityError), run it again: it then replaces them. After
    `APPLY_ATTEMPTS` refusals, a 503 that says nothing changed."""
    failure = "IntegrityError"
    for _ in range(APPLY_ATTEMPTS):
        try:
            return await change(work, conflicts=True)
        except IntegrityError as exc:
            failure = type(exc.orig).__name__
    raise Unavailable(
        f"the store refused these {what} {APPLY_ATTEMPTS} times ({failure}); nothing changed",
        code="store_unavailable",
    )


async def change(fn: Callable[..., T], *args: Any, conflicts: bool = False) -> T:
    """Run a store change in a thread; the change and its audit row commit together, so a
    store that refuses either refuses both: a 503 that says nothing changed. An outage is
    left to the one outage answer; with `conflicts`, an IntegrityError (a duplicate id, a
    race with another gateway) reaches the caller, which decides."""
    try:
        return await run_in_threadpool(fn, *args)
    except DBAPIError as exc:
        if (conflicts and isinstance(exc, IntegrityError)) or store_unavailable(exc) is not None:
            raise
        raise Unavailable(
            f"the store did not take the change, nothing changed: {type(exc.orig).__name__}",
            code="store_unavailable",
        ) from None
