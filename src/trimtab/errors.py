"""Errors that leave the gateway, rendered in the wire format the client speaks."""

from __future__ import annotations

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
