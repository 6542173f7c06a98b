"""Request records for the SLO tests, written through the real TelemetryStore."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from trimtab.telemetry.record import RequestRecord

NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)  # half-way through a minute


def request(n: int, at: float, **fields: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "id": f"req_{n:08d}",
        "started_at": at,
        "api": "openai",
        "operation": "chat",
        "tenant": "acme",
        "request_model": "gpt-mock",
        "provider": "upstream",
        "route": "support",
        "version": "1",
        "status_code": 200,
        "duration_ms": 100.0,
    }
    base.update(fields)
    return RequestRecord(**base)


def every(seconds: float, span_s: float, end: datetime = NOW) -> Iterable[float]:
    """Start times one `seconds` apart over the `span_s` seconds before `end`, the newest
    a second before it."""
    last = end.timestamp() - 1
    n = int(span_s // seconds)
    return (last - (n - 1 - i) * seconds for i in range(n))


def guardrails(
    *fired: str, ran: tuple[str, ...] = ("input.pii", "input.injection")
) -> dict[str, Any]:
    """A record's `attributes` with its guardrails, as gateway/guarding.py writes them:
    the checks in `ran` ran and those in `fired` fired (each check's entry has its own
    `fired` flag)."""
    checks = [{"check": c, "outcome": "flag" if c in fired else "pass", "fired": c in fired}
              for c in ran]  # fmt: skip
    return {"guardrails": {"mode": "enforce", "checks": checks, "fired": list(fired),
                           "blocked": None}}  # fmt: skip
