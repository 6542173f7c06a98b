"""One request's journey: its id, its clock and the record it leaves."""

from __future__ import annotations

import time
from time import perf_counter
from typing import Any, Protocol

from trimtab.errors import GatewayError
from trimtab.telemetry.record import RequestRecord
from trimtab.types import Principal, Wire, new_request_id


class _Closing(Protocol):
    """What puts its part on the record when the exchange closes (gateway/guarding.py)."""

    def close(self, ex: Exchange) -> None: ...


class Exchange:
    """Per-request state; `upstream_s` is time spent waiting on the provider."""

    __slots__ = (
        "_ttft_at",
        "attempts",
        "client_body",
        "guard",
        "record",
        "sent",
        "t0",
        "upstream_s",
        "wire",
    )

    def __init__(self, wire: Wire, operation: str) -> None:
        self.t0 = perf_counter()
        self.wire = wire
        self.upstream_s = 0.0
        self._ttft_at: float | None = None
        self.attempts: list[dict[str, Any]] = []
        # set only when bodies are recorded: the client's parsed body, and the bytes sent
        # upstream by the last attempt when they differ from it (None: sent as received)
        self.client_body: dict[str, Any] | None = None
        self.sent: bytes | None = None
        self.guard: _Closing | None = None  # gateway/guarding.py's Guard, when a policy applies
        self.record = RequestRecord(
            id=new_request_id(), started_at=time.time(), api=wire, operation=operation
        )

    @property
    def id(self) -> str:
        return self.record.id

    def identify(self, principal: Principal) -> None:
        self.record.tenant = principal.tenant
        self.record.key_id = principal.key_id

    def elapsed_ms(self) -> float:
        return (perf_counter() - self.t0) * 1000

    def overhead_ms(self) -> float:
        return max(self.elapsed_ms() - self.upstream_s * 1000, 0.0)

    def mark_first_token(self) -> None:
        if self._ttft_at is None:
            self._ttft_at = perf_counter()
            self.record.ttft_ms = (self._ttft_at - self.t0) * 1000

    def headers(self) -> dict[str, str]:
        out = {
            "x-trimtab-request-id": self.record.id,
            "x-trimtab-overhead-ms": f"{self.overhead_ms():.3f}",
        }
        if self.record.route is not None:
            out["x-trimtab-route"] = self.record.route
            out["x-trimtab-version"] = self.record.version or ""
        return out

    def note_attempt(
        self,
        model: str,
        deployment: str | None,
        outcome: str,
        status: int | None,
        duration_ms: float,
        error: str | None,
    ) -> None:
        """One call to an upstream (or a skipped one), for the on-call engineer."""
        self.attempts.append(
            {
                "model": model,
                "deployment": deployment,
                "outcome": outcome,
                "status": status,
                "at_ms": round(self.elapsed_ms() - duration_ms, 3),
                "duration_ms": round(duration_ms, 3),
                "error": error,
            }
        )

    def annotate(self, **values: Any) -> None:
        attributes = self.record.attributes
        if attributes is None:
            self.record.attributes = dict(values)
        else:
            attributes.update(values)

    def fail(self, err: GatewayError) -> None:
        self.record.status_code = err.status
        self.record.error_type = err.code
        self.record.error_message = err.message

    def close(self) -> RequestRecord:
        """Stamp the final timings on the record."""
        rec = self.record
        if self.attempts:
            self.annotate(attempts=self.attempts)
        if self.guard is not None:
            self.guard.close(self)
        if self.sent is not None:
            rec.upstream_request_body = self.sent.decode("utf-8", "replace")
        rec.duration_ms = self.elapsed_ms()
        rec.overhead_ms = max(rec.duration_ms - self.upstream_s * 1000, 0.0)
        return rec
