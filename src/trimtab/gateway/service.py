"""The data plane's handlers: authenticate, validate, resolve, dispatch, relay, record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from trimtab.alerts.signal import Signal
from trimtab.auth.keyring import KeyRing, require_role
from trimtab.canary.assignment import sticky_key
from trimtab.config import GuardrailsConfig, Pricing
from trimtab.errors import (
    DomainError,
    GatewayError,
    error_body,
    gateway_error,
)
from trimtab.gateway.accounting import Charge, account, note_served
from trimtab.gateway.body import read_body
from trimtab.gateway.caching import AnswerCache
from trimtab.gateway.catalog import Catalog, Target
from trimtab.gateway.dialects import (
    check_anthropic,
    check_embeddings,
    check_openai,
    check_stream_flag,
    client_response,
    parse_request,
    require_model,
)
from trimtab.gateway.dispatch import Dispatcher
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.failures import from_upstream
from trimtab.gateway.guarding import Guarding
from trimtab.gateway.models_list import model_list
from trimtab.gateway.replies import JSON_TYPE, Replies
from trimtab.gateway.route_calls import ROUTE_PREFIX, resolve_route_request
from trimtab.gateway.streaming import Streamer
from trimtab.gateway.tags import request_tags
from trimtab.policy.estimate import (
    estimate_input_tokens,
    requested_output_tokens,
)
from trimtab.policy.service import Ask, Policy
from trimtab.providers.base import UpstreamError
from trimtab.rollouts.table import RouteTable, Version
from trimtab.state.base import SharedState
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.telemetry.recorder import Recorder
from trimtab.types import MODEL_CALLERS, Wire

log = logging.getLogger(__name__)

ASSIGNMENT_TTL_S = 30 * 86400.0  # after a caller's last request: longer than rollouts run


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
        guardrails: GuardrailsConfig | None = None,
        signals: Callable[[Signal], None] | None = None,
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
        self._guarding = Guarding(guardrails, state, metrics, self._spawn, signals)
        self._replies = Replies(recorder, record_bodies=record_bodies)
        self._cache = AnswerCache(
            state, metrics, self._replies, recorder, record_bodies=record_bodies
        )
        self._streamer = Streamer(
            dispatcher,
            self._cache,
            self._replies,
            recorder,
            record_bodies=record_bodies,
            spawn=self._spawn,
            settle=self._settle,
        )

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
                ex, self._plan(ex, target), "openai", body, "embeddings"
            )
            note_served(ex, served.target, served.deployment)
            account(ex, served.target, served.parsed, "openai")
            return self._replies.ok(ex, served.raw)
        except UpstreamError as exc:
            return self._replies.error(ex, from_upstream(exc))
        except (GatewayError, DomainError) as err:
            return self._replies.error(ex, err)
        except Exception as exc:
            return self._replies.error(ex, self._replies.crashed(ex, exc))
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
        data = model_list(targets, anthropic="anthropic-version" in request.headers)
        return Response(orjson.dumps(data), 200, rid.headers(), media_type=JSON_TYPE)

    # -- the chat pipeline -------------------------------------------------------------

    async def _chat(self, request: Request, wire: Wire) -> Response:
        ex = Exchange(wire, "chat")
        charge: Charge | None = None
        try:
            body = await self._admit(ex, request)
            body, version = await self._route(ex, body, wire)
            if wire == "openai":
                check_openai(body)
            else:
                check_anthropic(body)
            stream = check_stream_flag(body)
            ex.record.streamed = stream
            guard = self._guarding.attach(ex, version)  # None: no policy, no guardrail work
            if guard is not None:
                body = await self._guarding.before(ex, guard, body, wire)
            target = self._target(ex, body)
            charge, target = await self._charge(ex, target, body)
            key = self._cache.key(ex, target, wire, body) if target.config.cache else None
            if key is not None:
                hit = await self._cache.lookup(ex, target, key, wire, body, stream)
                if hit is not None:
                    return hit
            plan = self._plan(ex, target)
            checked = guard if guard is not None and guard.policy.has_output else None
            if stream:
                response = await self._streamer.open(ex, plan, wire, body, key, charge, checked)
                charge = None  # the stream settles it when it ends
                return response
            served = await self._dispatcher.call(ex, plan, wire, body, "chat")
            provider_wire = served.deployment.provider.wire
            out = client_response(wire, provider_wire, served.parsed, served.raw, target.name)
            note_served(ex, served.target, served.deployment)
            account(ex, served.target, served.parsed, provider_wire)
            if checked is not None:

                async def again() -> bytes:  # json_schema on_fail: retry_once
                    return await self._answer_again(ex, plan, wire, body)

                out = await self._guarding.after(checked, out, wire, again)
            if key is not None:
                self._spawn(self._cache.remember(ex, served.target, key, out))
            return self._replies.ok(ex, out)
        except UpstreamError as exc:
            return self._replies.error(ex, from_upstream(exc))
        except (GatewayError, DomainError) as err:
            return self._replies.error(ex, err)
        except Exception as exc:
            return self._replies.error(ex, self._replies.crashed(ex, exc))
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
        if (traceparent := request.headers.get("traceparent")) is not None:
            ex.annotate(traceparent=traceparent[:128])  # the caller's trace (telemetry/otel.py)
        return body

    async def _route(
        self, ex: Exchange, body: dict[str, Any], wire: Wire
    ) -> tuple[dict[str, Any], Version | None]:
        """`model: "route:NAME"`: the version renders the request (gateway/route_calls.py).
        The body to serve, and the version serving it (None: a plain model call)."""
        rec = ex.record
        key = sticky_key(rec.user, rec.session, ex.id)
        chosen = await self._assigned(body, key, rec.tenant)
        body, route, version = resolve_route_request(
            body,
            self._routes,
            wire=wire,
            tenant=rec.tenant,
            sticky_key=key,
            chosen=chosen,
        )
        if route is None:
            return body, None
        rec.route, rec.version = route, version
        rec.request_model = str(body["model"])  # the model the version serves
        if chosen is None:  # the same (deterministic) choice resolve_route_request made
            chosen = self._routes.version_for(route, key, rec.tenant)
        return body, chosen

    async def _answer_again(
        self, ex: Exchange, plan: list[Target], wire: Wire, body: dict[str, Any]
    ) -> bytes:
        """A second answer to the same request; the record carries both calls' usage."""
        rec = ex.record
        before = (rec.input_tokens or 0, rec.output_tokens or 0, rec.cost_usd or 0.0)
        served = await self._dispatcher.call(ex, plan, wire, body, "chat")
        provider_wire = served.deployment.provider.wire
        note_served(ex, served.target, served.deployment)
        account(ex, served.target, served.parsed, provider_wire)
        rec.input_tokens = (rec.input_tokens or 0) + before[0]
        rec.output_tokens = (rec.output_tokens or 0) + before[1]
        rec.cost_usd = (rec.cost_usd or 0.0) + before[2]
        ex.annotate(guardrail_retries=1)
        name = served.target.name
        return client_response(wire, provider_wire, served.parsed, served.raw, name)

    async def _assigned(self, body: dict[str, Any], key: str, tenant: str) -> Version | None:
        """During a rollout whose plan keeps the first version given (`assignment:
        first_seen`), the version this caller was first given: remembered in the shared
        state, so a caller keeps one version for the whole rollout. None otherwise: the
        caller's bucket decides (rollouts/table.py), with no state to ask."""
        model = body.get("model")
        if not isinstance(model, str) or not model.startswith(ROUTE_PREFIX):
            return None
        entry = self._routes.get(model[len(ROUTE_PREFIX) :], tenant)  # names are per tenant
        if entry is None or entry.canary is None or not entry.canary.remember:
            return None
        if key.startswith("request:"):
            return None
        canary = entry.canary
        chosen = self._routes.version_for(entry, key)
        mark = b"c" if chosen is canary.candidate else b"s"
        kept = await self._state.assign(canary.rollout_id, key, mark, ASSIGNMENT_TTL_S)
        return canary.candidate if kept == b"c" else entry.stable

    def _plan(self, ex: Exchange, target: Target) -> list[Target]:
        plan = self._catalog.plan(target)
        if plan[0] is not target:  # switched to its fallbacks (gateway/switches.py)
            ex.annotate(model_switched={"model": target.name, "to": plan[0].name})
        return plan

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
        note_served(ex, target, target.primary)
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
            note_served(ex, target, target.primary)
            ex.annotate(downgraded_from=admission.downgraded_from)
        return Charge(ask, admission), target

    def _pricing(self, model: str) -> Pricing:
        return self._catalog.resolve(model).config.pricing

    def _settle(self, ex: Exchange, charge: Charge | None) -> None:
        """Settle after the response with the cost the record carries: a success's, and a
        stream's cut short (by the client or the provider), whose tokens were generated and
        billed — estimated from what was sent when no usage came. A failure without an
        answer carries none and is charged nothing."""
        self._guarding.settle(ex)  # a session's spend, when its policy caps it
        if charge is None:
            return
        rec = ex.record
        self._spawn(
            self._policy.settle(
                charge.admission,
                charge.ask,
                rec.cost_usd,
                rec.input_tokens,
                rec.output_tokens,
                completed=rec.status_code < 400,
            )
        )
