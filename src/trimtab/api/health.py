"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import admin, json_response
from trimtab.auth.keyring import KeyRing
from trimtab.store.errors import summary
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.telemetry.recorder import Recorder
from trimtab.telemetry.spill import SpillFile
from trimtab.telemetry.store import TelemetryStore


@dataclass
class Lifecycle:
    """Whether start-up (migrations, spill replay, providers) has finished."""

    ready: bool = False


class HealthAPI:
    def __init__(
        self,
        lifecycle: Lifecycle,
        store: TelemetryStore,
        recorder: Recorder,
        spill: SpillFile,
        metrics: GatewayMetrics,
        checks: Sequence[Callable[[], str | None]] = (),
        *,
        keys: KeyRing | None = None,
        metrics_public: bool = False,
    ) -> None:
        """`checks` are extra readiness checks: each returns a problem, or None.

        /metrics is the whole server (every tenant's series): with `keys` configured it
        needs an admin key, unless `metrics_public` opens it for a scraper."""
        self._keys = keys
        self._metrics_public = metrics_public
        self._life = lifecycle
        self._store = store
        self._recorder = recorder
        self._spill = spill
        self._metrics = metrics
        self._checks = tuple(checks)

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        problems: list[str] = []
        if not self._life.ready:
            problems.append("starting")
        try:
            await run_in_threadpool(self._store.ping)
        except Exception as exc:
            # one line, no data: a SQLAlchemy error's str() carries the statement's parameters
            problems.append(f"store unreachable: {summary(exc)}")
        recording = self._recorder.problem()
        if recording is not None:
            problems.append(recording)
        problems.extend(p for p in (check() for check in self._checks) if p is not None)
        body = {
            "status": "ready" if not problems else "not ready",
            "problems": problems,
            "telemetry": {
                "queue_depth": self._recorder.depth(),
                "spill_bytes": self._spill.size(),
            },
        }
        return json_response(body, 200 if not problems else 503)

    async def prometheus(self, request: Request) -> Response:
        if self._keys is not None and not self._metrics_public:
            admin(self._keys, request, "read /metrics (every tenant's series)")
        return Response(self._metrics.exposition(), 200, media_type=CONTENT_TYPE_LATEST)
