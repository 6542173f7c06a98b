"""The data plane's handlers: authenticate, validate, resolve, call, relay, record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from trimtab.errors import GatewayError, Wire, error_body, stream_error_event
from trimtab.gateway.auth import MODEL_CALLERS, KeyRing, require_role
from trimtab.gateway.body import read_body
from trimtab.gateway.catalog import Catalog, Target
from trimtab.gateway.dialects import (
    check_anthropic,
    check_embeddings,
    check_messages,
    check_stream_flag,
    client_response,
    client_wants_usage,
    finish_reasons_of,
    parse_request,
    parse_upstream,
    require_model,
    upstream_request,
    usage_of,
)
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.failures import from_upstream
from trimtab.gateway.relay import Relay, make_relay
from trimtab.gateway.tags import request_tags
from trimtab.providers.base import Operation, UpstreamError, UpstreamStream
from trimtab.telemetry.recorder import Recorder

JSON_TYPE = "application/json"


class Gateway:
    """Serves /v1/chat/completions, /v1/messages, /v1/embeddings and /v1/models."""

    def __init__(
        self,
        catalog: Catalog,
        keys: KeyRing,
        recorder: Recorder,
        *,
        max_body_bytes: int,
        record_bodies: bool,
    ) -> None:
        self._catalog = catalog
        self._keys = keys
        self._recorder = recorder
        self._limit = max_body_bytes
        self._bodies = record_bodies

    # -- endpoints ---------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        return await self._chat(request, "openai")

    async def messages(self, request: Request) -> Response:
        return await self._chat(request, "anthropic")

    async def embeddings(self, request: Request) -> Response:
        ex = Exchange("openai", "embeddings")
        try:
            body = await self._admit(ex, request)
            check_embeddings(body)
            target = self._target(ex, body, request)
            if target.provider.wire != "openai":
                raise GatewayError(
                    400,
                    "unsupported_operation",
                    f"model '{target.name}' is served by {target.provider.kind} provider "
                    f"'{target.provider.name}', which has no embeddings endpoint",
                    param="model",
                )
            up_body = dict(body)
            up_body["model"] = target.upstream_model
            raw = await self._call(ex, target, "embeddings", up_body)
            parsed = parse_upstream(raw, target.provider.name)
            self._account(ex, target, parsed, "openai")
            return self._respond(ex, raw)
        except UpstreamError as exc:
            return self._error(ex, from_upstream(exc))
        except GatewayError as err:
            return self._error(ex, err)

    async def models(self, request: Request) -> Response:
        rid = Exchange("openai", "models")
        try:
            principal = self._keys.authenticate(request.headers)
            require_role(principal, MODEL_CALLERS, "list models")
        except GatewayError as err:
            wire: Wire = "anthropic" if "anthropic-version" in request.headers else "openai"
            return Response(
                error_body(err, wire, rid.id), err.status, rid.headers(), media_type=JSON_TYPE
            )
        targets = self._catalog.targets()
        if "anthropic-version" in request.headers:
            data: Any = {
                "data": [
                    {
                        "type": "model",
                        "id": t.name,
                        "display_name": t.name,
                        "created_at": "1970-01-01T00:00:00Z",
                    }
                    for t in targets
                ],
                "has_more": False,
                "first_id": targets[0].name if targets else None,
                "last_id": targets[-1].name if targets else None,
            }
        else:
            data = {
                "object": "list",
                "data": [
                    {"id": t.name, "object": "model", "created": 0, "owned_by": t.provider.name}
                    for t in targets
                ],
            }
        return Response(orjson.dumps(data), 200, rid.headers(), media_type=JSON_TYPE)

    # -- the chat pipeline -------------------------------------------------------------

    async def _chat(self, request: Request, wire: Wire) -> Response:
        ex = Exchange(wire, "chat")
        try:
            body = await self._admit(ex, request)
            if wire == "openai":
                check_messages(body)
            else:
                check_anthropic(body)
            stream = check_stream_flag(body)
            ex.record.streamed = stream
            target = self._target(ex, body, request)
            provider_wire = target.provider.wire
            up_body = upstream_request(wire, provider_wire, body, target.upstream_model, stream)
            if stream:
                relay = make_relay(
                    wire,
                    provider_wire,
                    target.provider.name,
                    target.name,
                    client_wants_usage(body),
                    ex.id,
                )
                return await self._stream(ex, target, up_body, relay)
            raw = await self._call(ex, target, "chat", up_body)
            parsed = parse_upstream(raw, target.provider.name)
            out = client_response(wire, provider_wire, parsed, raw, target.name)
            self._account(ex, target, parsed, provider_wire)
            return self._respond(ex, out)
        except UpstreamError as exc:
            return self._error(ex, from_upstream(exc))
        except GatewayError as err:
            return self._error(ex, err)

    async def _admit(self, ex: Exchange, request: Request) -> dict[str, Any]:
        """Authenticate, read and parse the body, note who and what it is for."""
        principal = self._keys.authenticate(request.headers)
        ex.identify(principal)
        require_role(principal, MODEL_CALLERS, "call models")
        raw = await read_body(request, self._limit)
        if self._bodies:
            ex.record.request_body = raw.decode("utf-8", "replace")
        body = parse_request(raw)
        ex.record.request_model = require_model(body)
        rec = ex.record
        rec.user, rec.session, rec.feature = request_tags(body, request.headers)
        return body

    def _target(self, ex: Exchange, body: dict[str, Any], request: Request) -> Target:
        target = self._catalog.resolve(str(body["model"]))
        rec = ex.record
        rec.provider = target.provider.name
        rec.provider_kind = target.provider.kind
        rec.upstream_model = target.upstream_model
        return target

    async def _call(
        self, ex: Exchange, target: Target, op: Operation, body: dict[str, Any]
    ) -> bytes:
        t = perf_counter()
        try:
            return await target.provider.call(op, body, target.config.timeout_s)
        finally:
            ex.upstream_s += perf_counter() - t

    def _account(self, ex: Exchange, target: Target, parsed: dict[str, Any], wire: Wire) -> None:
        rec = ex.record
        rec.input_tokens, rec.output_tokens = usage_of(wire, parsed)
        rec.cost_usd = target.config.pricing.cost(rec.input_tokens, rec.output_tokens)
        rec.finish_reasons = finish_reasons_of(wire, parsed)
        rid, model = parsed.get("id"), parsed.get("model")
        rec.response_id = rid if isinstance(rid, str) else None
        rec.response_model = model if isinstance(model, str) else None

    def _respond(self, ex: Exchange, body: bytes) -> Response:
        headers = ex.headers()
        if self._bodies:
            ex.record.response_body = body.decode("utf-8", "replace")
        self._recorder.record(ex.close())
        return Response(body, 200, headers, media_type=JSON_TYPE)

    def _error(self, ex: Exchange, err: GatewayError) -> Response:
        ex.fail(err)
        body = error_body(err, ex.wire, ex.id)
        headers = ex.headers()
        if err.retry_after:
            headers["retry-after"] = err.retry_after
        if self._bodies:
            ex.record.response_body = body.decode()
        self._recorder.record(ex.close())
        return Response(body, err.status, headers, media_type=JSON_TYPE)

    # -- streaming ---------------------------------------------------------------------

    async def _stream(
        self, ex: Exchange, target: Target, body: dict[str, Any], relay: Relay
    ) -> Response:
        t = perf_counter()
        try:
            upstream = await target.provider.open_stream("chat", body, target.config.timeout_s)
        finally:
            ex.upstream_s += perf_counter() - t
        headers = ex.headers()
        headers["cache-control"] = "no-cache"
        return StreamingResponse(
            self._relay(ex, target, upstream, relay),
            200,
            headers,
            media_type="text/event-stream",
        )

    async def _relay(
        self, ex: Exchange, target: Target, upstream: UpstreamStream, relay: Relay
    ) -> AsyncIterator[bytes]:
        """Forward each event as it arrives; end with an explicit error if the provider fails."""
        rec = ex.record
        try:
            events = upstream.events()
            while True:
                t = perf_counter()
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    ex.upstream_s += perf_counter() - t
                    break
                ex.upstream_s += perf_counter() - t
                out = relay.feed(event)
                if relay.token_seen:
                    ex.mark_first_token()
                if out:
                    yield out
                if relay.done:
                    break
            if not relay.done:
                raise UpstreamError(
                    "stream_cut",
                    f"provider '{target.provider.name}' ended the stream before finishing it",
                )
        except UpstreamError as exc:
            err = from_upstream(exc)
            ex.fail(err)
            yield stream_error_event(err, ex.wire, ex.id)
        except GatewayError as err:
            ex.fail(err)
            yield stream_error_event(err, ex.wire, ex.id)
        except (asyncio.CancelledError, GeneratorExit):
            ex.fail(GatewayError(499, "client_disconnected", "the client went away mid-stream"))
            raise
        finally:
            await upstream.close()
            rec.input_tokens, rec.output_tokens = relay.usage()
            rec.cost_usd = target.config.pricing.cost(rec.input_tokens, rec.output_tokens)
            rec.finish_reasons = relay.finish_reasons()
            rec.response_id, rec.response_model = relay.response_meta()
            if self._bodies:
                rec.response_body = orjson.dumps(relay.response()).decode()
            self._recorder.record(ex.close())
