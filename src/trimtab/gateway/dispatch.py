"""Getting an answer despite failing upstreams: deployments, retries, fallbacks, breakers.

For each model of the plan (the asked model, then its fallbacks): up to `retries + 1`
attempts, each on a deployment picked by weight among those whose breaker allows it,
avoiding ones that already failed this request. Retryable failures (connect, timeouts,
429, 5xx, cut or garbled responses) are retried with exponential backoff and full jitter,
or after the provider's `retry-after`; a failure that is the client's fault is returned
at once. Streams are committed to the client only once the first token arrived, so
everything before that falls back transparently.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TypeVar

import orjson

from trimtab.errors import GatewayError
from trimtab.gateway.breakers import Breakers
from trimtab.gateway.catalog import Deployment, Target
from trimtab.gateway.dialects import parse_upstream, upstream_request
from trimtab.gateway.exchange import Exchange
from trimtab.gateway.relay import Relay
from trimtab.providers.base import SSEEvent, UpstreamError, UpstreamStream
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.types import Operation, Wire

T = TypeVar("T")

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
MAX_RETRY_AFTER_S = 10.0  # a longer retry-after is not waited for: the next model is tried


def retryable(exc: UpstreamError) -> bool:
    """Worth trying again on the same model: the upstream's trouble, not the request's."""
    if exc.kind != "status":
        return True
    status = exc.status or 502
    return status == 429 or status >= 500


def fallbackable(exc: UpstreamError) -> bool:
    """Worth trying another model: also when this upstream refused trimtab or lacks the model."""
    return retryable(exc) or exc.status in (401, 403, 404)


def backoff_s(attempt: int, retry_after: str | None, rng: random.Random) -> float | None:
    """Seconds to wait before retry number `attempt + 1`; None: do not wait, move on."""
    if retry_after is not None:
        try:
            wait = float(retry_after)
        except ValueError:
            wait = -1.0
        if wait > MAX_RETRY_AFTER_S:
            return None
        if wait >= 0:
            return wait
    return rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def pick(deployments: list[Deployment], rng: random.Random) -> Deployment:
    """A weighted random choice."""
    if len(deployments) == 1:
        return deployments[0]
    return rng.choices(deployments, weights=[d.weight for d in deployments])[0]


@dataclass(slots=True)
class Served:
    """A successful non-streaming answer and who gave it."""

    target: Target
    deployment: Deployment
    raw: bytes
    parsed: dict[str, Any]


@dataclass(slots=True)
class OpenStream:
    """A stream whose first token has arrived: committed to the client from here on."""

    target: Target
    deployment: Deployment
    upstream: UpstreamStream
    events: AsyncIterator[SSEEvent]
    relay: Relay
    head: bytes  # what the relay produced up to and including the first token


class Dispatcher:
    def __init__(
        self,
        breakers: Breakers,
        metrics: GatewayMetrics,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._breakers = breakers
        self._metrics = metrics
        self._rng = rng
        self._sleep = sleep

    async def call(
        self,
        ex: Exchange,
        plan: list[Target],
        client: Wire,
        body: dict[str, Any],
        op: Operation,
    ) -> Served:
        """A non-streaming answer from the first model of the plan that gives one."""

        async def attempt(target: Target, dep: Deployment) -> Served:
            up_body = self._body(target, dep, client, body, op, stream=False)
            raw = await dep.provider.call(
                op, up_body, target.config.timeout_s, encoded=_keep_sent(ex, dep, up_body)
            )
            return Served(target, dep, raw, parse_upstream(raw, dep.provider.name))

        return await self._run(ex, plan, attempt, record_success=True)

    async def open_stream(
        self,
        ex: Exchange,
        plan: list[Target],
        client: Wire,
        body: dict[str, Any],
        make_relay: Callable[[Target, Deployment], Relay],
    ) -> OpenStream:
        """A stream that has produced its first token; failures before that fall back."""

        async def attempt(target: Target, dep: Deployment) -> OpenStream:
            cfg = target.config
            up_body = self._body(target, dep, client, body, "chat", stream=True)
            idle = cfg.stream_idle_timeout_s or cfg.timeout_s
            ttft = cfg.ttft_timeout_s or cfg.timeout_s
            relay = make_relay(target, dep)
            upstream = await dep.provider.open_stream(
                "chat", up_body, cfg.timeout_s, idle, encoded=_keep_sent(ex, dep, up_body)
            )
            events = upstream.events()
            head: list[bytes] = []
            try:
                async with asyncio.timeout(ttft):
                    while not relay.token_seen and not relay.done:
                        out = relay.feed(await anext(events))
                        if out:
                            head.append(out)
            except TimeoutError:
                await upstream.close()
                raise UpstreamError(
                    "timeout", f"provider '{dep.provider.name}' sent no token within {ttft:g}s"
                ) from None
            except StopAsyncIteration:
                if not relay.done:
                    await upstream.close()
                    raise UpstreamError(
                        "stream_cut",
                        f"provider '{dep.provider.name}' ended the stream before finishing it",
                    ) from None
            except BaseException:
                await upstream.close()
                raise
            return OpenStream(target, dep, upstream, events, relay, b"".join(head))

        # a stream's success is known only at its end: the relay records it then
        return await self._run(ex, plan, attempt, record_success=False)

    async def settle_stream(self, opened: OpenStream, ok: bool) -> None:
        """Count a finished stream's outcome against its deployment's breaker."""
        breaker = opened.target.config.breaker
        if breaker is not None:
            await self._breakers.record(opened.deployment.key, breaker, ok)

    def _body(
        self,
        target: Target,
        dep: Deployment,
        client: Wire,
        body: dict[str, Any],
        op: Operation,
        stream: bool,
    ) -> dict[str, Any]:
        if op == "embeddings":
            out = dict(body)
            out["model"] = dep.upstream_model
            return out
        return upstream_request(client, dep.provider.wire, body, dep.upstream_model, stream)

    async def _choose(self, target: Target, failed: set[str]) -> Deployment | None:
        """A deployment by weight, preferring ones not failed yet, whose breaker allows it.

        Breakers are asked only for the deployment picked, so a half-open breaker's single
        probe is spent on a request that is really sent."""
        pool = [d for d in target.deployments if d.key not in failed] or list(target.deployments)
        breaker = target.config.breaker
        while pool:
            dep = pick(pool, self._rng)
            if breaker is None or await self._breakers.allows(dep.key, breaker):
                return dep
            pool.remove(dep)
        return None

    async def _run(
        self,
        ex: Exchange,
        plan: list[Target],
        attempt: Callable[[Target, Deployment], Awaitable[T]],
        *,
        record_success: bool,
    ) -> T:
        last: UpstreamError | GatewayError | None = None
        for index, target in enumerate(plan):
            failed: set[str] = set()
            breaker = target.config.breaker
            for n in range(target.config.retries + 1):
                dep = await self._choose(target, failed)
                if dep is None:
                    ex.note_attempt(target.name, None, "breaker_open", None, 0.0, None)
                    last = last or GatewayError(
                        503,
                        "no_healthy_deployment",
                        f"every deployment of model '{target.name}' is out of rotation "
                        "(circuit breaker open)",
                    )
                    break
                t = perf_counter()
                try:
                    result = await attempt(target, dep)
                except GatewayError as err:
                    # the request cannot be put to this model (e.g. untranslatable)
                    if index == 0:
                        raise
                    ex.note_attempt(target.name, dep.key, err.code, err.status, 0.0, err.message)
                    last = last or err
                    break
                except UpstreamError as exc:
                    elapsed = perf_counter() - t
                    ex.upstream_s += elapsed
                    code = _outcome(exc)
                    ex.note_attempt(
                        target.name, dep.key, code, exc.status, elapsed * 1000, exc.message
                    )
                    self._metrics.attempts.labels(dep.key, code).inc()
                    if breaker is not None:
                        await self._breakers.record(dep.key, breaker, False)
                    last = exc
                    if not fallbackable(exc):
                        raise
                    if not retryable(exc) or n == target.config.retries:
                        break
                    wait = backoff_s(n, exc.retry_after, self._rng)
                    if wait is None:
                        break
                    failed.add(dep.key)
                    await self._sleep(wait)
                    continue
                elapsed = perf_counter() - t
                ex.upstream_s += elapsed
                ex.note_attempt(target.name, dep.key, "ok", None, elapsed * 1000, None)
                self._metrics.attempts.labels(dep.key, "ok").inc()
                if record_success and breaker is not None:
                    await self._breakers.record(dep.key, breaker, True)
                if index:
                    self._metrics.fallbacks.labels(plan[0].name, target.name).inc()
                return result
        assert last is not None
        raise last


def _keep_sent(ex: Exchange, dep: Deployment, up_body: dict[str, Any]) -> bytes | None:
    """When bodies are recorded and this attempt's body is not the client's (a route's
    rendering, another wire format, an added field): serialise it once, for the provider to send
    and the record to keep. Otherwise None, and the provider serialises it as usual.

    `model` is left out of the comparison: the record's upstream_model says what it was."""
    client = ex.client_body
    if client is None:
        return None
    if dep.provider.wire == ex.wire and _same_but_model(up_body, client):
        ex.sent = None
        return None
    ex.sent = orjson.dumps(up_body)
    return ex.sent


def _same_but_model(sent: dict[str, Any], client: dict[str, Any]) -> bool:
    # a passthrough body is a shallow copy: its values are the client's objects, so
    # comparing them costs an identity check each
    if sent.keys() != client.keys():
        return False
    return all(key == "model" or value == client[key] for key, value in sent.items())


def _outcome(exc: UpstreamError) -> str:
    if exc.kind == "status":
        return f"http_{exc.status}"
    return exc.kind
