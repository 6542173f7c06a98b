"""Streamed answers: open the provider's stream, then relay each event as it arrives; a
provider that fails mid-stream ends it with an explicit error event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from time import perf_counter
from typing import Any

import orjson
from starlette.responses import Response

from trimtab.errors import DomainError, GatewayError, as_gateway_error, stream_error_event
from trimtab.gateway.accounting import Charge, note_served
from trimtab.gateway.caching import AnswerCache
from trimtab.gateway.catalog import Deployment, Target
from trimtab.gateway.dialects import client_wants_usage
from trimtab.gateway.dispatch import Dispatcher, OpenStream
from trimtab.gateway.event_stream import EventStream
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.failures import from_upstream
from trimtab.gateway.guarded_relay import GuardedRelay
from trimtab.gateway.guarding import Guard
from trimtab.gateway.relay import Relay, make_relay
from trimtab.gateway.replies import Replies
from trimtab.policy.estimate import estimate_input_tokens, estimate_output_tokens
from trimtab.providers.base import UpstreamError
from trimtab.telemetry.recorder import Recorder
from trimtab.types import Wire


class Streamer:
    """Relays streams; `spawn` runs bookkeeping after the response, `settle` the charge."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        cache: AnswerCache,
        replies: Replies,
        recorder: Recorder,
        *,
        record_bodies: bool,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        settle: Callable[[Exchange, Charge | None], None],
    ) -> None:
        self._dispatcher = dispatcher
        self._cache = cache
        self._replies = replies
        self._recorder = recorder
        self._bodies = record_bodies
        self._spawn = spawn
        self._settle = settle

    async def open(
        self,
        ex: Exchange,
        plan: list[Target],
        wire: Wire,
        body: dict[str, Any],
        key: str | None,
        charge: Charge | None,
        guard: Guard | None = None,
    ) -> Response:
        """`guard`: the request's guardrails with output checks, run on the text deltas."""
        wants_usage = client_wants_usage(body)

        def relay_for(target: Target, dep: Deployment) -> Relay:
            relay = make_relay(
                wire, dep.provider.wire, dep.provider.name, target.name, wants_usage, ex.id
            )
            if guard is None:
                return relay
            return GuardedRelay(relay, dep.provider.wire, guard)

        opened = await self._dispatcher.open_stream(ex, plan, wire, body, relay_for)
        ex.mark_first_token()
        note_served(ex, opened.target, opened.deployment)
        headers = ex.headers()
        headers["cache-control"] = "no-cache"
        return EventStream(
            self._relay(ex, opened, key, charge, estimate_input_tokens(body)), 200, headers
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
            crash = self._replies.crashed(ex, exc)
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
                self._spawn(self._cache.remember(ex, opened.target, key, response))
            self._settle(ex, charge)
            self._recorder.record(ex.close())
