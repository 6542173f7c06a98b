"""The answer cache of the chat pipeline: look up, replay (whole or as a stream), remember."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from trimtab.gateway.cache import CachedAnswer, cache_key, replay_stream
from trimtab.gateway.catalog import Target
from trimtab.gateway.dialects import client_wants_usage
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.replies import SSE_TYPE, Replies
from trimtab.state.base import SharedState
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.telemetry.recorder import Recorder
from trimtab.types import Wire


class AnswerCache:
    """Answers kept in the shared state, per model, wire, body, tenant and route version."""

    def __init__(
        self,
        state: SharedState,
        metrics: GatewayMetrics,
        replies: Replies,
        recorder: Recorder,
        *,
        record_bodies: bool,
    ) -> None:
        self._state = state
        self._metrics = metrics
        self._replies = replies
        self._recorder = recorder
        self._bodies = record_bodies

    async def lookup(
        self,
        ex: Exchange,
        target: Target,
        key: str,
        wire: Wire,
        body: dict[str, Any],
        stream: bool,
    ) -> Response | None:
        raw = await self._state.cache_get(key)
        if raw is None:
            self._metrics.cache.labels(target.name, "miss").inc()
            ex.annotate(cache="miss")
            return None
        self._metrics.cache.labels(target.name, "hit").inc()
        answer = CachedAnswer.decode(raw)
        rec = ex.record
        rec.input_tokens, rec.output_tokens = answer.input_tokens, answer.output_tokens
        rec.finish_reasons = answer.finish_reasons
        rec.response_model = answer.response_model
        rec.cost_usd = 0.0
        ex.annotate(cache="hit", cost_saved_usd=answer.cost_usd)
        if not stream:
            return self._replies.ok(ex, answer.body)
        replay = replay_stream(wire, orjson.loads(answer.body), client_wants_usage(body))
        ex.mark_first_token()
        headers = ex.headers()
        if self._bodies:
            rec.response_body = answer.body.decode()
        self._recorder.record(ex.close())
        return Response(replay, 200, headers, media_type=SSE_TYPE)

    @staticmethod
    def key(ex: Exchange, target: Target, wire: Wire, body: dict[str, Any]) -> str:
        rec = ex.record
        version = f"{rec.route}@{rec.version}" if rec.route is not None else None
        return cache_key(target.name, wire, "chat", body, tenant=rec.tenant, route_version=version)

    async def remember(self, ex: Exchange, target: Target, key: str, body: bytes) -> None:
        rec = ex.record
        answer = CachedAnswer(
            body, rec.input_tokens, rec.output_tokens, rec.cost_usd,
            rec.finish_reasons, rec.response_model,
        )  # fmt: skip
        ttl = target.config.cache.ttl_s if target.config.cache else 0.0
        await self._state.cache_set(key, answer.encode(), ttl)
