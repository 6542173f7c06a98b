"""The open-loop load: each request built, sent on time (or counted late) and its answer
classified."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from soak_bench.settings import CACHE_PROMPTS, CLIENT_TIMEOUT_S, LATE_S
from soak_bench.traffic import KINDS, Kind, Wire


@dataclass(slots=True)
class Result:
    kind: str
    stream: bool
    outcome: str  # "200 ok", "200 stream ok", "200 stream error CODE", "429 rate_limited", ...
    status: int  # 0: no HTTP answer
    latency_s: float
    request_id: str | None
    error_code: str | None  # the code the client saw (stream or status error)


@dataclass
class Load:
    """Counters shared by the sender, the requests and the sampler."""

    sent: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    late: int = 0
    max_late_s: float = 0.0
    not_sent: int = 0
    results: list[Result] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped_early: str | None = None


def bucket(res: Result) -> str:
    """The sample-table column an outcome belongs to."""
    if res.status == 0 or res.outcome.endswith("stream truncated") or "bad body" in res.outcome:
        return "other"
    if " stream error " in res.outcome:
        return "stream_err"
    if 200 <= res.status < 300:
        return "2xx"
    if 400 <= res.status < 500:
        return "4xx"
    return "5xx"


def request_for(
    kind: Kind, i: int, stream: bool, rng: random.Random
) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of request number i."""
    if kind.cached:
        prompt = f"soak cached question {rng.randrange(CACHE_PROMPTS)}"
    else:
        prompt = f"soak request {i} of kind {kind.name}: say something short"
    messages = [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": kind.model, "messages": messages, "max_tokens": 64}
    headers = {"content-type": "application/json", "x-trimtab-feature": f"soak-{kind.name}"}
    if kind.wire == "openai":
        path = "/v1/chat/completions"
        headers["authorization"] = f"Bearer {kind.key}"
        body["user"] = f"user-{i % 50}"
        if stream:
            body["stream"] = True
            if i % 2:
                body["stream_options"] = {"include_usage": True}
    else:
        path = "/v1/messages"
        headers["x-api-key"] = kind.key
        headers["anthropic-version"] = "2023-06-01"
        body["metadata"] = {"user_id": f"user-{i % 50}"}
        if stream:
            body["stream"] = True
    if kind.body == "bad":
        body["messages"] = "not a list"
    return path, json.dumps(body).encode(), headers


def error_code(raw: bytes, wire: Wire) -> str:
    """trimtab's error code from an error body (Anthropic bodies carry only the type)."""
    try:
        data = json.loads(raw)
        err = data["error"]
        if wire == "openai":
            return str(err.get("code") or err.get("type"))
        return "anthropic:" + str(err.get("type"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "unparseable"


def _openai_token(data: bytes) -> bool:
    """Whether an OpenAI stream chunk carries content."""
    try:
        delta = json.loads(data)["choices"][0]["delta"]
    except (ValueError, KeyError, TypeError, IndexError):
        return False
    return isinstance(delta, dict) and bool(delta.get("content") or delta.get("tool_calls"))


def classify_stream(raw: bytes, wire: Wire) -> tuple[str, str | None]:
    """(outcome suffix, error code) of a streamed 200 answer."""
    events: list[tuple[str | None, bytes]] = []
    for block in raw.split(b"\n\n"):
        name: str | None = None
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if data:
            events.append((name, data))
    for name, data in events:
        is_error = name == "error" if wire == "anthropic" else data.startswith(b'{"error"')
        if is_error:
            code = error_code(data, wire)
            return f"stream error {code}", code
    if wire == "openai":
        done = bool(events) and events[-1][1] == b"[DONE]"
        tokens = any(_openai_token(d) for _, d in events)
    else:
        done = bool(events) and events[-1][0] == "message_stop"
        tokens = any(n == "content_block_delta" for n, _ in events)
    if not done:
        return "stream truncated", None
    return ("stream ok", None) if tokens else ("stream empty", None)


def classify_body(raw: bytes, wire: Wire) -> str:
    try:
        data = json.loads(raw)
        if wire == "openai":
            ok = isinstance(data["choices"][0]["message"], dict)
        else:
            ok = data["type"] == "message" and isinstance(data["content"], list)
    except (ValueError, KeyError, TypeError, IndexError):
        ok = False
    return "ok" if ok else "bad body"


async def one_request(
    session: aiohttp.ClientSession,
    base: str,
    kind: Kind,
    i: int,
    stream: bool,
    rng: random.Random,
    load: Load,
    slots: asyncio.Semaphore,
) -> None:
    path, body, headers = request_for(kind, i, stream, rng)
    t = time.monotonic()
    status = 0
    rid: str | None = None
    code: str | None = None
    try:
        async with session.post(base + path, data=body, headers=headers) as resp:
            status = resp.status
            rid = resp.headers.get("x-trimtab-request-id")
            raw = await resp.read()
        if status == 200 and stream:
            suffix, code = classify_stream(raw, kind.wire)
        elif status == 200:
            suffix = classify_body(raw, kind.wire)
        else:
            code = error_code(raw, kind.wire)
            suffix = code
        outcome = f"{status} {suffix}"
    except TimeoutError:
        outcome = f"{status or 'no answer'}: client timeout after {CLIENT_TIMEOUT_S:g} s"
    except aiohttp.ClientError as exc:
        outcome = f"{status or 'no answer'}: {type(exc).__name__}"
    finally:
        load.in_flight -= 1
        slots.release()
    res = Result(kind.name, stream, outcome, status, time.monotonic() - t, rid, code)
    load.results.append(res)
    load.outcomes[outcome] += 1


async def drive(
    base: str,
    rate: float,
    duration_s: float,
    concurrency: int,
    seed: int,
    load: Load,
    trimtab: subprocess.Popen[bytes],
    started: asyncio.Event,
) -> None:
    """Send rate * duration_s requests on a fixed schedule; stop by itself."""
    rng = random.Random(seed)
    total = int(rate * duration_s)
    weights = [k.share for k in KINDS]
    slots = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        started.set()
        hard_stop = t0 + duration_s + 60.0  # never run on long after the schedule
        for i in range(total):
            due = t0 + i / rate
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            if trimtab.poll() is not None:
                load.stopped_early = f"trimtab exited with {trimtab.returncode} during the load"
                load.not_sent = total - i
                break
            if loop.time() > hard_stop:
                load.stopped_early = "fell more than 60 s behind the schedule"
                load.not_sent = total - i
                break
            await slots.acquire()
            late = loop.time() - due
            if late > LATE_S:
                load.late += 1
            load.max_late_s = max(load.max_late_s, late)
            kind = rng.choices(KINDS, weights)[0]
            stream = rng.random() < kind.stream_share
            load.sent += 1
            load.in_flight += 1
            load.peak_in_flight = max(load.peak_in_flight, load.in_flight)
            task = loop.create_task(one_request(session, base, kind, i, stream, rng, load, slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=CLIENT_TIMEOUT_S + 10)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
