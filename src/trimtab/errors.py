"""Errors: domain errors raised by the code below the app, and the wire errors it renders.

Domain code (auth, policy, registry, rollouts, the API's own checks) raises a
`DomainError` subclass naming the kind of failure; it never speaks HTTP. The app maps
it once, with `gateway_error`, to the `GatewayError` the data plane and the API render
in the client's wire format.
"""

from __future__ import annotations

from typing import ClassVar

import orjson

from trimtab.types import Wire

# status -> (OpenAI error type, Anthropic error type)
_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    403: ("permission_error", "permission_error"),
    404: ("not_found_error", "not_found_error"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_error"),
    499: ("api_error", "api_error"),
    500: ("api_error", "api_error"),
    502: ("api_error", "api_error"),
    503: ("api_error", "overloaded_error"),
    504: ("timeout_error", "timeout_error"),
}


class GatewayError(Exception):
    """A failure with the status and message the client will see.

    `code` is a short stable name (recorded as `error.type` in telemetry).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.retry_after = retry_after


class DomainError(Exception):
    """A failure of the request, named by kind (the subclass) and a short stable `code`.

    `code` is what the client reads as `error.code` and telemetry records as
    `error.type`; each subclass has a default for its usual case.
    """

    default_code: ClassVar[str] = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.param = param
        self.retry_after = retry_after


class Invalid(DomainError):
    """The request is malformed or a parameter is out of range."""


class Unauthenticated(DomainError):
    """No credential, or one that is not (or no longer) valid."""

    default_code = "invalid_api_key"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    default_code = "forbidden"


class NotFound(DomainError):
    default_code = "not_found"


class Conflict(DomainError):
    """The request contradicts the current state (a duplicate, a wrong status)."""

    default_code = "conflict"


class TooLarge(DomainError):
    default_code = "request_too_large"


class LimitExceeded(DomainError):
    """A rate limit or budget refuses the request; `retry_after` says when to retry."""

    default_code = "rate_limited"


class Unavailable(DomainError):
    """Something the request needs is unreachable for now; retrying later may work."""

    default_code = "unavailable"


# The one table from kind of failure to HTTP status.
_STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    LimitExceeded: 429,
    Unavailable: 503,
}


def status_of(err: DomainError) -> int:
    """The HTTP status of a domain error (its nearest kind in the table; 400 for the base)."""
    for kind in type(err).__mro__:
        status = _STATUS.get(kind)
        if status is not None:
            return status
    return 400


def gateway_error(err: DomainError) -> GatewayError:
    """The wire error for a domain error: same code, message, param and retry hint."""
    return GatewayError(
        status_of(err), err.code, err.message, param=err.param, retry_after=err.retry_after
    )


def as_gateway_error(err: GatewayError | DomainError) -> GatewayError:
    """The wire error for either kind: a GatewayError as it is, a DomainError mapped."""
    return err if isinstance(err, GatewayError) else gateway_error(err)


def internal_error(exc: BaseException) -> GatewayError:
    """The 500 for a failure nothing anticipated; its traceback goes to the log, not the client."""
    return GatewayError(
        500,
        "internal_error",
        f"internal error ({type(exc).__name__}); the gateway's log has the details",
    )


def error_type(status: int, wire: Wire) -> str:
    """The wire format's error type for an HTTP status."""
    pair = _TYPES.get(status) or _TYPES[500 if status >= 500 else 400]
    return pair[0] if wire == "openai" else pair[1]


def error_payload(err: GatewayError, wire: Wire, request_id: str) -> dict[str, object]:
    """The JSON error object of the wire format, carrying the request id."""
    message = f"{err.message} (request id: {request_id})"
    if wire == "anthropic":
        return {
            "type": "error",
            "error": {"type": error_type(err.status, wire), "message": message},
            "request_id": request_id,
        }
    return {
        "error": {
            "message": message,
            "type": error_type(err.status, wire),
            "param": err.param,
            "code": err.code,
            "request_id": request_id,
        }
    }


def error_body(err: GatewayError, wire: Wire, request_id: str) -> bytes:
    return orjson.dumps(error_payload(err, wire, request_id))


def stream_error_event(err: GatewayError, wire: Wire, request_id: str) -> bytes:
    """An SSE event that ends a stream explicitly with an error both SDKs raise on."""
    data = error_body(err, wire, request_id)
    if wire == "anthropic":
        return b"event: error\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"
