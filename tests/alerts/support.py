"""Helpers shared by the alert tests: signals and an alerts configuration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from trimtab.alerts.signal import Severity, Signal, Source
from trimtab.config import AlertsConfig
from trimtab.testing.servers import free_port

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def signal(
    key: str = "slo_burn/support-latency/page",
    *,
    firing: bool = True,
    severity: Severity = "page",
    source: Source = "slo_burn",
    at: datetime = T0,
    labels: dict[str, str] | None = None,
    details: dict[str, object] | None = None,
    summary: str = "support-latency burns its budget 14.4x over 1h",
    expires_at: datetime | None = None,
) -> Signal:
    return Signal(
        source=source,
        dedup_key=key,
        severity=severity,
        firing=firing,
        summary=summary,
        at=at,
        labels=labels if labels is not None else {"route": "support", "tenant": "acme"},
        details=details or {},
        expires_at=expires_at,
    )


def alerts_config(url: str = "http://127.0.0.1:9/hook", **extra: Any) -> AlertsConfig:
    """One sink of each kind, all pointing at `url`."""
    data: dict[str, Any] = {
        "sinks": {
            "hook": {"kind": "webhook", "url": url},
            "chat": {"kind": "slack", "url": url, "severities": ["ticket", "info"]},
            "pager": {
                "kind": "pagerduty",
                "url": url,
                "routing_key": "R0UT1NG",
                "severities": ["page"],
            },
            "am": {"kind": "alertmanager", "url": url},
        },
        **extra,
    }
    return AlertsConfig.model_validate(data)


@dataclass
class Receiver:
    """An HTTP endpoint on loopback answering a scripted sequence of statuses (then 200);
    with `hang` set, it holds each request until `release` (or the client gives up)."""

    url: str
    script: list[int] = field(default_factory=list)
    hang: bool = False
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, dict(request.headers), await request.json()))
        if self.hang:
            await self.release.wait()
        status = self.script.pop(0) if self.script else 200
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def bodies(self, path: str | None = None) -> list[Any]:
        return [body for p, _, body in self.received if path is None or p == path]


@contextlib.asynccontextmanager
async def receiving(port: int | None = None) -> AsyncIterator[Receiver]:
    """A Receiver on 127.0.0.1 (any path), stopped on exit."""
    port = port or free_port()
    rec = Receiver(f"http://127.0.0.1:{port}")
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield rec
    finally:
        rec.release.set()
        await runner.cleanup()
