"""How an exchange ends: its response (the answer, or an error in the client's wire format)
and its record, handed to the recorder."""

from __future__ import annotations

import logging

from starlette.responses import Response

from trimtab.errors import DomainError, GatewayError, as_gateway_error, error_body, internal_error
from trimtab.gateway.exchange import Exchange
from trimtab.telemetry.recorder import Recorder

# the logger the data plane's internal errors have always gone to (log filters name it)
log = logging.getLogger("trimtab.gateway.service")

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


class Replies:
    """Renders and records the end of each exchange."""

    def __init__(self, recorder: Recorder, *, record_bodies: bool) -> None:
        self._recorder = recorder
        self._bodies = record_bodies

    def ok(self, ex: Exchange, body: bytes) -> Response:
        headers = ex.headers()
        if self._bodies:
            ex.record.response_body = body.decode("utf-8", "replace")
        self._recorder.record(ex.close())
        return Response(body, 200, headers, media_type=JSON_TYPE)

    @staticmethod
    def crashed(ex: Exchange, exc: Exception) -> GatewayError:
        """A failure no branch anticipated: its traceback, once, in the log (no bodies);
        the client gets a 500 in its own format and the request still leaves a record."""
        rec = ex.record
        log.error(
            "internal error on %s %s, request %s (model %s)",
            rec.api, rec.operation, ex.id, rec.request_model, exc_info=exc,
        )  # fmt: skip
        return internal_error(exc)

    def error(self, ex: Exchange, failure: GatewayError | DomainError) -> Response:
        err = as_gateway_error(failure)
        ex.fail(err)
        body = error_body(err, ex.wire, ex.id)
        headers = ex.headers()
        if err.retry_after:
            headers["retry-after"] = err.retry_after
        if self._bodies:
            ex.record.response_body = body.decode()
        self._recorder.record(ex.close())
        return Response(body, err.status, headers, media_type=JSON_TYPE)
