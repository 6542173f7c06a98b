"""The data plane's handlers: authenticate, validate, resolve, dispatch, relay, record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from time import perf_counter
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from trimtab.auth.keyring import KeyRing, require_role
from trimtab.canary.assignment import sticky_key
from trimtab.config import Pricing
from trimtab.errors import (
    DomainError,
    GatewayError,
    as_gateway_error,
    error_body,
    gateway_error,
    internal_error,
    stream_error_event,
)
from trimtab.gateway.body import read_body
from trimtab.gateway.cache import CachedAnswer, cache_key, replay_stream
from trimtab.gateway.catalog import Catalog, Deployment, Target
from trimtab.gateway.dialects import (
    check_anthropic,
    check_embeddings,
    check_openai,
    check_stream_flag,
    client_response,
    client_wants_usage,
    finish_reasons_of,
    parse_request,
    require_model,
    usage_of,
)
from trimtab.gateway.dispatch import Dispatcher, OpenStream
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.failures import from_upstream
from trimtab.gateway.relay import Relay, make_relay
from trimtab.gateway.route_calls import ROUTE_PREFIX, resolve_route_request
from trimtab.gateway.tags import request_tags
from trimtab.policy.estimate import (
    estimate_input_tokens,
    estimate_output_tokens,
    requested_output_tokens,
)
from trimtab.policy.service import Admission, Ask, Policy
from trimtab.providers.base import UpstreamError
from trimtab.rollouts.table import RouteTable, Version
from trimtab.state.base import SharedState
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.telemetry.recorder import Recorder
from trimtab.types import MODEL_CALLERS, Wire

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
ASSIGNMENT_TTL_S = 30 * 86400.0  # after a caller's last request: longer than rollouts run


class Charge:
    """A request's admission by the policy, settled exactly once when its cost is known."""

    __slots__ = ("admission", "ask")

    def __init__(self, ask: Ask, admission: Admission) -> None:
        self.ask = ask
        self.admission = admission


class Gateway:
    """Serves /v1/chat/completions, /v1/messages, /v1/embeddings and /v1/models."""

    def __init__(
        self,
        catalog: Catalog,
        keys: KeyRing,
        recorder: Recorder,
        dispatcher: Dispatcher,
        state: SharedState,
        metrics: GatewayMetrics,
        policy: Policy,
        *,
        max_body_bytes: int,
        record_bodies: bool,
        routes: RouteTable | None = None,
    ) -> None:
        self._catalog = catalog
        self._keys = keys
        self._recorder = recorder
        self._dispatcher = dispatcher
        self._state = state
        self._metrics = metrics
        self._policy = policy
        self._limit = max_body_bytes
        self._bodies = record_bodies
        self._routes = routes if routes is not None else RouteTable()
        self._background: set[asyncio.Task[None]] = set()

    async def drain(self) -> None:
        """Wait for the bookkeeping started after responses (cache writes, breaker counts)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # its own task: not cancelled with a stream whose client went away
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- endpoints ---------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        return await self._chat(request, "openai")

    async def messages(self, request: Request) -> Response:
        return await self._chat(request, "anthropic")

    async def embeddings(self, request: Request) -> Response:
        ex = Exchange("openai", "embeddings")
        charge: Charge | None = None
        try:
            body = await self._admit(ex, request)
            check_embeddings(body)
            target = self._target(ex, body)
            charge, target = await self._charge(ex, target, body)
            if target.primary.provider.wire != "openai":
                raise GatewayError(
                    400,
                    "unsupported_operation",
                    f"model '{target.name}' is served by {target.primary.provider.kind} "
                    f"provider '{target.primary.provider.name}', which has no embeddings endpoint",
                    param="model",
                )
            served = await self._dispatcher.call(
                ex, self._catalog.plan(target), "openai", body, "embeddings"
            )
            self._served(ex, served.target, served.deployment)
            self._account(ex, served.target, served.parsed, "openai")
            return self._respond(ex, served.raw)
        except UpstreamError as exc:
            return self._error(ex, from_upstream(exc))
        except (GatewayError, DomainError) as err:
            return self._error(ex, err)
        except Exception as exc:
            return self._error(ex, self._crashed(ex, exc))
        finally:
            self._settle(ex, charge)

    async def models(self, request: Request) -> Response:
        rid = Exchange("openai", "models")
        try:
            principal = self._keys.authenticate(request.headers)
            require_role(principal, MODEL_CALLERS, "list models")
        except DomainError as exc:
            err = gateway_error(exc)
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
                    {
                        "id": t.name,
                        "object": "model",
                        "created": 0,
                        "owned_by": t.primary.provider.name,
                    }
                    for t in targets
                ],
            }
        return Response(orjson.dumps(data), 200, rid.headers(), media_type=JSON_TYPE)

    # -- the chat pipeline -------------------------------------------------------------

    async def _chat(self, request: Request, wire: Wire) -> Response:
        ex = Exchange(wire, "chat")
        charge: Charge | None = None
        try:
            body = await self._admit(ex, request)
            body = await self._route(ex, body, wire)
            if wire == "openai":
                check_openai(body)
            else:
                check_anthropic(body)
            stream = check_stream_flag(body)
            ex.record.streamed = stream
            target = self._target(ex, body)
            charge, target = await self._charge(ex, target, body)
            key = self._cache_key(ex, target, wire, body) if target.config.cache else None
            if key is not None:
                hit = await self._cached(ex, target, key, wire, body, stream)
                if hit is not None:
                    return hit
            plan = self._catalog.plan(target)
            if stream:
                response = await self._stream(ex, plan, wire, body, key, charge)
                charge = None  # the stream settles it when it ends
                return response
            served = await self._dispatcher.call(ex, plan, wire, body, "chat")
            provider_wire = served.deployment.provider.wire
            out = client_response(wire, provider_wire, served.parsed, served.raw, target.name)
            self._served(ex, served.target, served.deployment)
            self._account(ex, served.target, served.parsed, provider_wire)
            if key is not None:
                self._spawn(self._remember(ex, served.target, key, out))
            return self._respond(ex, out)
        except UpstreamError as exc:
            return self._error(ex, from_upstream(exc))
        except (GatewayError, DomainError) as err:
            return self._error(ex, err)
        except Exception as exc:
            return self._error(ex, self._crashed(ex, exc))
        finally:
            self._settle(ex, charge)

    async def _admit(self, ex: Exchange, request: Request) -> dict[str, Any]:
        """Authenticate, read and parse the body, note who and what it is for."""
        principal = self._keys.authenticate(request.headers)
        ex.identify(principal)
        require_role(principal, MODEL_CALLERS, "call models")
        raw = await read_body(request, self._limit)
        if self._bodies:
            ex.record.request_body = raw.decode("utf-8", "replace")
        body = parse_request(raw)
        if self._bodies:
            ex.client_body = body
        ex.record.request_model = require_model(body)
        rec = ex.record
        rec.user, rec.session, rec.feature = request_tags(body, request.headers)
        return body

    async def _route(self, ex: Exchange, body: dict[str, Any], wire: Wire) -> dict[str, Any]:
        """`model: "route:NAME"`: the version renders the request (gateway/route_calls.py)."""
        rec = ex.record
        key = sticky_key(rec.user, rec.session, ex.id)
        body, route, version = resolve_route_request(
            body,
            self._routes,
            wire=wire,
            tenant=rec.tenant,
            sticky_key=key,
            chosen=await self._assigned(body, key, rec.tenant),
        )
        if route is not None:
            rec.route, rec.version = route, version
            rec.request_model = str(body["model"])  # the model the version serves
        return body

    async def _assigned(self, body: dict[str, Any], key: str, tenant: str) -> Version | None:
        """During a rollout, the version this caller was first given: remembered in the
        shared state, so a caller keeps one version for the whole rollout."""
        model = body.get("model")
        if not isinstance(model, str) or not model.startswith(ROUTE_PREFIX):
            return None
        entry = self._routes.get(model[len(ROUTE_PREFIX) :], tenant)  # names are per tenant
        if entry is None or entry.canary is None or key.startswith("request:"):
            return None
        canary = entry.canary
        chosen = self._routes.version_for(entry, key)
        mark = b"c" if chosen is canary.candidate else b"s"
        kept = await self._state.assign(canary.rollout_id, key, mark, ASSIGNMENT_TTL_S)
        return canary.candidate if kept == b"c" else entry.stable

    def _target(self, ex: Exchange, body: dict[str, Any]) -> Target:
        rec = ex.record
        try:
            target = self._catalog.resolve(str(body["model"]))
        except GatewayError as err:
            if rec.route is None:
                raise
            # the route outlived its model (applied under another configuration)
            known = ", ".join(self._catalog.names()) or "none"
            raise GatewayError(
                err.status,
                err.code,
                f"route '{rec.route}' ({rec.version}) serves model '{body['model']}', which "
                f"this gateway does not configure (configured: {known}); apply a version "
                "with a configured model, or configure it",
                param="model",
            ) from None
        self._served(ex, target, target.primary)
        return target

    async def _charge(
        self, ex: Exchange, target: Target, body: dict[str, Any]
    ) -> tuple[Charge | None, Target]:
        """Rate limits and budgets: refuse (429), or admit, maybe with a cheaper model."""
        if not self._policy.enabled:
            return None, target
        rec = ex.record
        ask = Ask(
            tenant=rec.tenant,
            key_id=rec.key_id,
            model=target.name,
            feature=rec.feature,
            route=rec.route,
            input_tokens=estimate_input_tokens(body),
            max_output_tokens=requested_output_tokens(body),
        )
        admission = await self._policy.admit(ask, self._pricing)
        if admission.model != target.name:
            target = self._catalog.resolve(admission.model)
            self._served(ex, target, target.primary)
            ex.annotate(downgraded_from=admission.downgraded_from)
        return Charge(ask, admission), target

    def _pricing(self, model: str) -> Pricing:
        return self._catalog.resolve(model).config.pricing

    def _settle(self, ex: Exchange, charge: Charge | None) -> None:
        """Settle after the response: the real cost of a success, nothing for a failure."""
        if charge is None:
            return
        rec = ex.record
        cost = rec.cost_usd if rec.status_code < 400 else None
        self._spawn(
            self._policy.settle(
                charge.admission, charge.ask, cost, rec.input_tokens, rec.output_tokens
            )
        )

    @staticmethod
    def _served(ex: Exchange, target: Target, dep: Deployment) -> None:
        rec = ex.record
        rec.provider = dep.provider.name
        rec.provider_kind = dep.provider.kind
        rec.upstream_model = dep.upstream_model
        if target.name != rec.request_model:
            ex.annotate(served_by=target.name)

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

    @staticmethod
    def _crashed(ex: Exchange, exc: Exception) -> GatewayError:
        """A failure no branch anticipated: its traceback, once, in the log (no bodies);
        the client gets a 500 in its own format and the request still leaves a record."""
        rec = ex.record
        log.error(
            "internal error on %s %s, request %s (model %s)",
            rec.api, rec.operation, ex.id, rec.request_model, exc_info=exc,
        )  # fmt: skip
        return internal_error(exc)

    def _error(self, ex: Exchange, failure: GatewayError | DomainError) -> Response:
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

    # -- the cache ---------------------------------------------------------------------

    async def _cached(
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
            return self._respond(ex, answer.body)
        replay = replay_stream(wire, orjson.loads(answer.body), client_wants_usage(body))
        ex.mark_first_token()
        headers = ex.headers()
        if self._bodies:
            rec.response_body = answer.body.decode()
        self._recorder.record(ex.close())
        return Response(replay, 200, headers, media_type=SSE_TYPE)

    @staticmethod
    def _cache_key(ex: Exchange, target: Target, wire: Wire, body: dict[str, Any]) -> str:
        rec = ex.record
        version = f"{rec.route}@{rec.version}" if rec.route is not None else None
        return cache_key(target.name, wire, "chat", body, tenant=rec.tenant, route_version=version)

    async def _remember(self, ex: Exchange, target: Target, key: str, body: bytes) -> None:
        rec = ex.record
        answer = CachedAnswer(
            body, rec.input_tokens, rec.output_tokens, rec.cost_usd,
            rec.finish_reasons, rec.response_model,
        )  # fmt: skip
        ttl = target.config.cache.ttl_s if target.config.cache else 0.0
        await self._state.cache_set(key, answer.encode(), ttl)

    # -- streaming ---------------------------------------------------------------------

    async def _stream(
        self,
        ex: Exchange,
        plan: list[Target],
        wire: Wire,
        body: dict[str, Any],
        key: str | None,
        charge: Charge | None,
    ) -> Response:
        wants_usage = client_wants_usage(body)

        def relay_for(target: Target, dep: Deployment) -> Relay:
            return make_relay(
                wire, dep.provider.wire, dep.provider.name, target.name, wants_usage, ex.id
            )

        opened = await self._dispatcher.open_stream(ex, plan, wire, body, relay_for)
        ex.mark_first_token()
        self._served(ex, opened.target, opened.deployment)
        headers = ex.headers()
        headers["cache-control"] = "no-cache"
        return StreamingResponse(
            self._relay(ex, opened, key, charge, estimate_input_tokens(body)),
            200,
            headers,
            media_type=SSE_TYPE,
        )

    async def _relay(
        self,
        ex: Exchange,
        opened: OpenStream,
        key: str | None,
        charge: Charge | None,
        input_estimate: int,
    ) -> AsyncIterator[bytes]:
        """Forward each event as it arrives; end with an explicit error if the provider fails."""
        relay, rec = opened.relay, ex.record
        finished = False
        try:
            if opened.head:
                yield opened.head
            while not relay.done:
                t = perf_counter()
                try:
                    event = await anext(opened.events)
                except StopAsyncIteration:
                    break
                finally:
                    ex.upstream_s += perf_counter() - t
                out = relay.feed(event)
                if out:
                    yield out
            if not relay.done:
                raise UpstreamError(
                    "stream_cut",
                    f"provider '{opened.deployment.provider.name}' ended the stream "
                    "before finishing it",
                )
            finished = True
        except UpstreamError as exc:
            err = from_upstream(exc)
            ex.fail(err)
            yield stream_error_event(err, ex.wire, ex.id)
        except (GatewayError, DomainError) as exc:
            err = as_gateway_error(exc)
            ex.fail(err)
            yield stream_error_event(err, ex.wire, ex.id)
        except Exception as exc:
            crash = self._crashed(ex, exc)
            ex.fail(crash)
            yield stream_error_event(crash, ex.wire, ex.id)
        except (asyncio.CancelledError, GeneratorExit):
            ex.fail(GatewayError(499, "client_disconnected", "the client went away mid-stream"))
            raise
        finally:
            await opened.upstream.close()
            rec.input_tokens, rec.output_tokens = relay.usage()
            assembled = relay.response()
            if not finished and (rec.input_tokens is None or rec.output_tokens is None):
                # a cut stream never got its usage chunk: charge what was sent, estimated
                if rec.input_tokens is None:
                    rec.input_tokens = input_estimate
                if rec.output_tokens is None:
                    rec.output_tokens = estimate_output_tokens(assembled)
                ex.annotate(usage_estimated=True)
            rec.cost_usd = opened.target.config.pricing.cost(rec.input_tokens, rec.output_tokens)
            rec.finish_reasons = relay.finish_reasons()
            rec.response_id, rec.response_model = relay.response_meta()
            response = orjson.dumps(assembled) if (self._bodies or key) else b""
            if self._bodies:
                rec.response_body = response.decode()
            provider_failed = not finished and rec.status_code != 499
            self._spawn(self._dispatcher.settle_stream(opened, not provider_failed))
            if finished and key is not None:
                self._spawn(self._remember(ex, opened.target, key, response))
            self._settle(ex, charge)
            self._recorder.record(ex.close())
