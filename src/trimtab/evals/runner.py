"""The eval runner: a run's remaining items, each sent through the gateway's own
`/v1/chat/completions` over HTTP, scored by the suite's scorers, and recorded.

Each call is an ordinary request to the gateway, so the gateway authenticates it, applies
its limits, budgets, fallbacks and cache, and records it like any other, tagged with the
run: feature `eval:RUN` and session RUN (`trimtab requests --feature eval:RUN` lists a
run's calls). A `judge` scorer's calls go the same way, to `route:JUDGE` with the
judge's variables (evals/judge.py), `repeats` times per answer, also for an answer reused
from the cache. A route version is rendered with the registry's own renderer
(`registry.bundle.render`, as the gateway renders `route:NAME`), so a version that does
not serve yet can be evaluated before its rollout.

Where the results go is a `Ledger` (the CLI's is the control-plane API): the runner asks
it which items the run holds already (a resumed run calls only the others) and which
request bodies an earlier run of the same target already answered (reused, not called,
unless `cache=False`), what each call cost by the gateway's own record of it (the
gateway prices the model that served, after fallbacks, and charges a cache hit nothing;
the record is written a moment after the answer, so the writer waits for it, up to
`COST_WAIT_S`), and hands it each result as soon as it is scored, so an interrupted
run loses at most the calls in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from trimtab.evals import judge
from trimtab.evals.datasets import Item, canonical
from trimtab.evals.judging import answer_text, error_text, judge_answer
from trimtab.evals.runs import Result
from trimtab.evals.scorers import Answer, Cost, Judge, Similarity, build
from trimtab.evals.scoring import score_all, stored_score
from trimtab.evals.similarity import load_model, score_batch
from trimtab.evals.suites import SuiteDefinition
from trimtab.registry.bundle import Bundle, VariableError, render
from trimtab.types import EVAL_FEATURE_PREFIX

RUN_FEATURE_PREFIX = EVAL_FEATURE_PREFIX  # kept out of production figures (types.py)
CACHE_LOOKUP_BATCH = 500
RECORD_BATCH = 100
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 120.0
COST_WAIT_S = 10.0  # how long the writer waits for the gateway to record a call
COST_POLL_S = 0.1
COST_WAIT_LATE_S = 1.0  # after a batch whose records did not all come in time


class Ledger(Protocol):
    """Where a run's results are kept."""

    async def done(self) -> set[str]:
        """The ids of the items the run holds a result for."""
        ...

    async def cached(self, digests: Sequence[str]) -> Mapping[str, Result]:
        """Earlier answers from the run's target to these request bodies, by digest."""
        ...

    async def record(self, results: Sequence[Result]) -> None: ...

    async def costs(self, request_ids: Sequence[str]) -> Mapping[str, float | None]:
        """The cost the gateway recorded for each of these calls that it has recorded yet
        (None: recorded without a cost, e.g. no pricing or no usage); a call not recorded
        yet is left out."""
        ...


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run sends: to a route version's bundle, or to a plain model."""

    run_id: str
    suite: SuiteDefinition
    items: Sequence[Item]
    bundle: Bundle | None = None
    model: str | None = None


@dataclass(slots=True)
class Progress:
    total: int
    skipped: int = 0  # already in the run (resumed)
    cached: int = 0
    called: int = 0
    errors: int = 0

    @property
    def done(self) -> int:
        return self.skipped + self.cached + self.called


@dataclass(frozen=True, slots=True)
class Gateway:
    url: str  # the gateway's base URL, without /v1
    api_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)


class ItemInputError(ValueError):
    """The item cannot be sent to this target (an error on the item)."""


def request_body(plan: Plan, item: Item) -> dict[str, Any]:
    """The chat completion request an item becomes."""
    sent = [dict(m) for m in item.messages] if item.messages is not None else []
    if plan.bundle is not None:
        try:
            rendered = render(plan.bundle, item.variables or {})
        except VariableError as exc:
            raise ItemInputError(f"item '{item.id}': {exc}") from None
        body: dict[str, Any] = {"model": plan.bundle.model, "messages": [*rendered, *sent]}
        body.update(plan.bundle.params)
        return body
    if item.messages is None:
        raise ItemInputError(
            f"item '{item.id}' has variables but no messages; the suite runs against "
            f"model '{plan.model}', which has no templates to fill: give the item messages"
        )
    return {"model": plan.model, "messages": sent}


def body_digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(dict(body))).hexdigest()


class Runner:
    """Runs a plan's remaining items with at most `concurrency` calls in flight."""

    def __init__(
        self,
        plan: Plan,
        gateway: Gateway,
        ledger: Ledger,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        cache: bool = True,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.plan = plan
        self.gateway = gateway
        self.ledger = ledger
        self.concurrency = concurrency
        self.cache = cache
        self.progress = Progress(total=len(plan.items))
        self._notify = on_progress or (lambda _: None)
        # similarity is scored a writer's batch at a time, across items (evals/similarity.py)
        self._similar = [s for s in plan.suite.scorers if isinstance(s, Similarity)]
        self._model = load_model(self._similar[0]) if self._similar else None
        self._scorers = {
            spec.name: build(spec)
            for spec in plan.suite.scorers
            if not isinstance(spec, Similarity)
        }
        self._judges = [spec for spec in plan.suite.scorers if isinstance(spec, Judge)]
        self._cost_scorers = {
            name: scorer
            for name, scorer in self._scorers.items()
            if any(isinstance(s, Cost) and s.name == name for s in plan.suite.scorers)
        }
        self._items = {item.id: item for item in plan.items}
        self._cost_wait_s = COST_WAIT_S
        self._writer: asyncio.Task[None] | None = None

    async def run(self) -> Progress:
        done = await self.ledger.done()
        todo = [item for item in self.plan.items if item.id not in done]
        self.progress.skipped = len(self.plan.items) - len(todo)
        self._notify(self.progress)
        queue: asyncio.Queue[Result | None] = asyncio.Queue()
        writer = self._writer = asyncio.create_task(self._write(queue))
        try:
            bodies: list[tuple[Item, dict[str, Any] | None, str]] = []
            for item in todo:
                try:
                    body = request_body(self.plan, item)
                except ItemInputError as exc:
                    # no body was sent: the digest of the item's input stands in for one's
                    digest = hashlib.sha256(canonical(item.input())).hexdigest()
                    self._count(queue, Result(item.id, digest, None, str(exc), {}), called=True)
                    continue
                bodies.append((item, body, body_digest(body)))
            calls = await self._reuse(bodies, queue)
            await self._call_all(calls, queue)
        finally:
            await queue.put(None)
            await writer
        return self.progress

    def _count(self, queue: asyncio.Queue[Result | None], result: Result, *, called: bool) -> None:
        if called:
            self.progress.called += 1
        else:
            self.progress.cached += 1
        self.progress.errors += result.error is not None
        queue.put_nowait(result)
        self._notify(self.progress)

    async def _reuse(
        self,
        bodies: list[tuple[Item, dict[str, Any] | None, str]],
        queue: asyncio.Queue[Result | None],
    ) -> list[tuple[Item, dict[str, Any] | None, str, Result | None]]:
        """Answer the items an earlier run answered from the cache; the others to call
        (and the reused answers a judge still has to score: judged by the workers)."""
        if not self.cache:
            return [(item, body, digest, None) for item, body, digest in bodies]
        hits: dict[str, Result] = {}
        digests = list(dict.fromkeys(d for _, _, d in bodies))
        for start in range(0, len(digests), CACHE_LOOKUP_BATCH):
            hits.update(await self.ledger.cached(digests[start : start + CACHE_LOOKUP_BATCH]))
        rest: list[tuple[Item, dict[str, Any] | None, str, Result | None]] = []
        for item, body, digest in bodies:
            hit = hits.get(digest)
            if hit is None or hit.output is None:
                rest.append((item, body, digest, None))
            elif self._judges:
                rest.append((item, body, digest, hit))
            else:
                self._count(queue, self._reused(item, digest, hit, {}), called=False)
        return rest

    def _reused(
        self, item: Item, digest: str, hit: Result, judged: dict[str, tuple[judge.Verdict, ...]]
    ) -> Result:
        assert hit.output is not None
        answer = Answer(hit.output, hit.cost_usd, hit.latency_ms, judged)
        return Result(
            item.id,
            digest,
            hit.output,
            None,
            score_all(self._scorers, item, answer),
            latency_ms=hit.latency_ms,
            input_tokens=hit.input_tokens,
            output_tokens=hit.output_tokens,
            cost_usd=hit.cost_usd,
            request_id=hit.request_id,
            cached=True,
        )

    async def _judge(
        self, client: httpx.AsyncClient, item: Item, output: str
    ) -> dict[str, tuple[judge.Verdict, ...]]:
        """Each judge's verdicts on `output`, its repeats one after another."""
        out: dict[str, tuple[judge.Verdict, ...]] = {}
        for spec in self._judges:
            out.update(await self._judge_with(client, spec, item, output))
        return out

    def _headers(self) -> dict[str, str]:
        headers = {
            "x-trimtab-feature": RUN_FEATURE_PREFIX + self.plan.run_id,
            "x-trimtab-session": self.plan.run_id,
        }
        if self.gateway.api_key:
            headers["authorization"] = f"Bearer {self.gateway.api_key}"
        return headers

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.gateway.url,
            headers=self._headers(),
            timeout=self.gateway.timeout_s,
            limits=httpx.Limits(max_connections=self.concurrency),
            transport=self.gateway.transport,
        )

    async def calibrate(self, sets: Mapping[str, Sequence[Item]]) -> dict[str, dict[str, Any]]:
        """Each judge (by scorer name) on its calibration items, against the people's
        verdicts (evals/judge.py): kappa, agreement, and the items it could not use. The
        calls go through the gateway like the run's, tagged with the run."""
        specs = {spec.name: spec for spec in self._judges}
        async with self._client() as client:
            return {
                name: await self._calibrate_one(client, specs[name], items)
                for name, items in sets.items()
            }

    async def _calibrate_one(
        self, client: httpx.AsyncClient, spec: Judge, items: Sequence[Item]
    ) -> dict[str, Any]:
        labels: dict[str, bool] = {}
        todo: list[tuple[Item, str]] = []
        problems: list[str] = []
        for item in items:
            try:
                label = judge.human_label(item)
                todo.append((item, judge.calibration_output(item)))
            except judge.JudgementError as exc:
                problems.append(str(exc))
                continue
            labels[item.id] = label
        judged: dict[str, float | None] = {}
        pending = iter(todo)

        async def worker() -> None:
            for item, output in pending:
                verdicts = (await self._judge_with(client, spec, item, output))[spec.name]
                failed = next((v.error for v in verdicts if v.error is not None), None)
                if failed is not None:
                    problems.append(f"calibration item '{item.id}': {failed}")
                    judged[item.id] = None
                    continue
                values = [v.value for v in verdicts if v.value is not None]
                judged[item.id] = sum(values) / len(values)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(todo)))))
        found = judge.calibration(labels, judged, spec.threshold)
        return {**found, "unusable": len(problems), "problems": problems[:50]}

    async def _judge_with(
        self, client: httpx.AsyncClient, spec: Judge, item: Item, output: str
    ) -> dict[str, tuple[judge.Verdict, ...]]:
        return {spec.name: await judge_answer(client, spec, item, output)}

    async def _call_all(
        self,
        calls: list[tuple[Item, dict[str, Any] | None, str, Result | None]],
        queue: asyncio.Queue[Result | None],
    ) -> None:
        pending = iter(calls)
        async with self._client() as client:

            async def worker() -> None:
                for item, body, digest, hit in pending:
                    if self._writer is not None and self._writer.done():
                        return  # the ledger refused a batch: calling on would be wasted
                    if hit is not None and hit.output is not None:
                        judged = await self._judge(client, item, hit.output)
                        self._count(queue, self._reused(item, digest, hit, judged), called=False)
                        continue
                    assert body is not None
                    result = await self._call(client, item, body, digest)
                    self._count(queue, result, called=True)

            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(calls)))))

    async def _call(
        self, client: httpx.AsyncClient, item: Item, body: dict[str, Any], digest: str
    ) -> Result:
        started = time.perf_counter()
        try:
            response = await client.post(
                "/v1/chat/completions",
                content=orjson.dumps(body),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            return Result(item.id, digest, None, f"the gateway did not answer: {exc!r}", {})
        latency = (time.perf_counter() - started) * 1000
        rid = response.headers.get("x-trimtab-request-id")
        if response.status_code >= 400:
            return Result(item.id, digest, None, error_text(response), {}, latency, request_id=rid)
        try:
            data = response.json()
            text = answer_text(data)
        except ValueError as exc:
            return Result(
                item.id, digest, None, f"unreadable answer: {exc}", {}, latency, request_id=rid
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        judged = await self._judge(client, item, text) if self._judges else {}
        answer = Answer(text, None, latency, judged)
        return Result(
            item.id,
            digest,
            text,
            None,
            score_all(self._scorers, item, answer),
            latency_ms=latency,
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            request_id=rid,
        )

    async def _write(self, queue: asyncio.Queue[Result | None]) -> None:
        """Hand results to the ledger as they come, in batches of what is waiting."""
        finished = False
        while not finished:
            first = await queue.get()
            batch = [] if first is None else [first]
            finished = first is None
            while not finished and len(batch) < RECORD_BATCH and not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    finished = True
                else:
                    batch.append(more)
            if batch:
                if self._model is not None:
                    batch = await asyncio.to_thread(self._similarity, batch)
                await self.ledger.record(await self._priced(batch))

    def _similarity(self, batch: list[Result]) -> list[Result]:
        """The batch with its answers' similarity scores: every answer and expected string
        of the batch encoded together, in full batches of the model's."""
        assert self._model is not None
        answered = [r for r in batch if r.output is not None]
        pairs = [(self._items[r.item_id], r.output or "") for r in answered]
        found = iter(score_batch(self._model, self._similar, pairs))
        out = []
        for result in batch:
            if result.output is None:
                out.append(result)
                continue
            scores = {name: stored_score(score) for name, score in next(found).items()}
            out.append(dataclasses.replace(result, scores={**result.scores, **scores}))
        return out

    async def _priced(self, batch: list[Result]) -> list[Result]:
        """The batch with the recorded cost of each call it made, and the `cost` scorers
        scored on it."""
        wanted = {
            r.request_id: r
            for r in batch
            if r.request_id and not r.cached and r.error is None and r.cost_usd is None
        }
        found: dict[str, float | None] = {}
        waited = 0.0
        while True:
            missing = [rid for rid in wanted if rid not in found]
            if missing:
                found.update(await self.ledger.costs(missing))
            if len(found) == len(wanted) or waited >= self._cost_wait_s:
                break
            await asyncio.sleep(COST_POLL_S)
            waited += COST_POLL_S
        if wanted and not found:
            # none of the batch's calls was recorded where the ledger looks (another
            # gateway's store): the later batches do not wait for theirs
            self._cost_wait_s = 0.0
        elif len(found) < len(wanted):
            # some records are late (spilled to disk under load): wait less from now on
            self._cost_wait_s = min(self._cost_wait_s, COST_WAIT_LATE_S)
        out = []
        for result in batch:
            rid = result.request_id
            if rid is None or rid not in wanted or found.get(rid) is None:
                out.append(result)
                continue
            cost = found[rid]
            scores = result.scores
            if self._cost_scorers and result.output is not None:
                item = self._items[result.item_id]
                answer = Answer(result.output, cost, result.latency_ms)
                scores = {**scores, **score_all(self._cost_scorers, item, answer)}
            out.append(dataclasses.replace(result, cost_usd=cost, scores=scores))
        return out
