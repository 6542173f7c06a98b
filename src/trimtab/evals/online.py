"""Online scoring: a share of a route's production answers scored in the background.

An applied suite of a route with `online: {sample: 0.05, scorers: [...]}` has its
reference-free scorers (suites.ONLINE_KINDS) run on about that share of the route's
recorded answers. Nothing happens on the request path: `OnlineScoring` reads what the
gateway recorded (so the answers must be stored: `storage.bodies` keeping them), picks a
request when the hash of its id falls under the share (every process picks the same
ones), queues it in a bounded queue (a full queue drops it, counted), scores at most the
suite's `max_per_minute` (its own budget; past it, dropped and counted), and stores each
score against the request (`online_scores`, one row per request, suite — scope and name —
and scorer: two suites with a scorer of the same name each keep theirs, and two processes
scoring the same request for one suite write it once), and in the same transaction into
`score_rollups`, per minute of the request, for the eval-score SLI (evals/score_rollups.py).
Eval runs' own calls are never scored.

`online_metric` gives the scores per route version, suite and scorer over time (GET
/api/evals/online); `rollouts.arms.ArmReader.quality` reads them per arm for the canary's
`quality_score`.

Judges and `python` scorers run too (evals/online_scorers.py): a judge's route is called
through the server's own gateway in process, its calls recorded as `eval:online:SUITE`
(eval traffic: never sampled here, never a canary arm's), within the suite's
`max_per_minute` and, when set, `max_usd_per_day` of the judges' recorded spend; a python
scorer runs in a thread with a timeout, and only from a module the server's configuration
names. Whatever fails is that scorer's error on the answer (`unusable`), never a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, or_, select

from trimtab.evals.datasets import Item
from trimtab.evals.from_requests import observed_answer
from trimtab.evals.online_scorers import (
    JudgeClients,
    Outcome,
    PythonRunner,
    SuiteScorers,
    judge_spend,
    judged,
    load,
    score_plain,
)
from trimtab.evals.score_rollups import store_scores
from trimtab.evals.scoring import stored_text
from trimtab.evals.suite_store import SuiteRow, SuiteStore
from trimtab.refresher import Periodic
from trimtab.store.engine import as_utc
from trimtab.store.tables import online_scores, requests
from trimtab.telemetry.production import production
from trimtab.types import SHARED

log = logging.getLogger(__name__)

INTERVAL_S = 5.0  # how often the recorded requests are read
QUEUE_SIZE = 1000  # answers waiting to be scored; past it, dropped
READ_BATCH = 500  # requests read per suite and cycle
SLOW_CONCURRENCY = 4  # answers a judge or python scorer works on at once
SPEND_EVERY = 20  # judged answers between two reads of the judges' spend


def sampled(request_id: str, share: float) -> bool:
    """Whether a request is in the sample: the same answer in every process."""
    h = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big")
    return h < share * 2**64


@dataclass
class OnlineStats:
    """What the scorer did since it started (GET /api/evals/online shows it)."""

    read: int = 0
    sampled: int = 0
    scored: int = 0
    unusable: int = 0  # sampled without a stored answer, or a score that failed
    dropped_queue: int = 0
    dropped_budget: int = 0
    dropped_cost: int = 0  # answers the judges did not score: their day's spend reached

    def view(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Budget:
    limit: int
    minute: datetime | None = None
    used: int = 0

    def take(self, now: datetime) -> bool:
        minute = now.replace(second=0, microsecond=0)
        if minute != self.minute:
            self.minute, self.used = minute, 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True


@dataclass(frozen=True, slots=True)
class _Job:
    suite: SuiteRow
    request: dict[str, Any]
    answer: str
    scorers: SuiteScorers


@dataclass
class _Spend:
    day: datetime
    usd: float = 0.0
    judged: int = 0  # answers judged since the last read


@dataclass
class _Cursor:
    at: datetime
    request_id: str = ""


@dataclass
class OnlineScoring:
    """The background scorer of every applied suite with `online:`."""

    engine: Engine
    interval_s: float = INTERVAL_S
    queue_size: int = QUEUE_SIZE
    since: datetime | None = None  # requests from here on (default: when it starts)
    stats: OnlineStats = field(default_factory=OnlineStats)
    judges: JudgeClients | None = None  # the server's own gateway, in process (app.py)
    python_scorers: Sequence[str] = ()  # config evals.python_scorers: modules it may run
    _scorers: dict[tuple[str, str], SuiteScorers] = field(default_factory=dict)
    _spend: dict[tuple[str, str], _Spend] = field(default_factory=dict)
    _python: PythonRunner = field(default_factory=PythonRunner)
    _cursors: dict[tuple[str, str], _Cursor] = field(default_factory=dict)
    _budgets: dict[tuple[str, str], _Budget] = field(default_factory=dict)
    _queue: asyncio.Queue[_Job] | None = None
    _loop: Periodic | None = None

    def start(self) -> None:
        self.since = self.since or datetime.now(UTC)
        # the store may be away: a failed cycle is logged and the next one tries again
        self._loop = Periodic(
            "trimtab-online-scoring",
            self.cycle,
            self.interval_s,
            failed="online scoring: a cycle failed",
            logger=log,
            wait_first=False,
        )
        self._loop.start()

    async def stop(self) -> None:
        if self._loop is not None:
            await self._loop.stop()
            self._loop = None
        self._python.close()

    async def cycle(self, now: datetime | None = None) -> int:
        """Read what was recorded since the last cycle, queue the sample, score the queue;
        the number of answers scored."""
        at = now or datetime.now(UTC)
        if self._queue is None:
            self._queue = asyncio.Queue(self.queue_size)
        jobs = await asyncio.to_thread(self._read, at)
        for job in jobs:
            try:
                self._queue.put_nowait(job)
            except asyncio.QueueFull:
                self.stats.dropped_queue += 1
        batch: list[_Job] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._score(batch, at)
        return len(batch)

    # -- reading ---------------------------------------------------------------------------

    def _read(self, now: datetime) -> list[_Job]:
        suites = [r for r in SuiteStore(self.engine).listed(None) if r.definition.online]
        jobs: list[_Job] = []
        for suite in suites:
            key = (suite.scope, suite.definition.name)
            cursor = self._cursors.setdefault(key, _Cursor(self.since or now))
            online = suite.definition.online
            assert online is not None
            budget = self._budgets.setdefault(key, _Budget(online.max_per_minute))
            budget.limit = online.max_per_minute  # a new apply may change it
            scorers = self._scorers.get(key)
            if scorers is None or scorers.digest != suite.digest:
                # built once per applied suite: a python scorer's function is imported here
                scorers = self._scorers[key] = load(
                    suite.definition, suite.digest, self.python_scorers
                )
                for problem in scorers.broken.values():
                    log.warning("online scoring, suite %s: %s", suite.definition.name, problem)
            for row in self._recorded(suite, cursor):
                self.stats.read += 1
                cursor.at, cursor.request_id = as_utc(row["started_at"]), row["id"]
                if not sampled(row["id"], online.sample):
                    continue
                self.stats.sampled += 1
                answer = observed_answer(_json(row["response_body"]))
                if answer is None:
                    self.stats.unusable += 1
                elif not budget.take(now):
                    self.stats.dropped_budget += 1
                else:
                    jobs.append(_Job(suite, row, answer, scorers))
        return jobs

    def _recorded(self, suite: SuiteRow, cursor: _Cursor) -> list[dict[str, Any]]:
        c = requests.c
        after = or_(
            c.started_at > cursor.at, and_(c.started_at == cursor.at, c.id > cursor.request_id)
        )
        where = [c.route == suite.definition.route, after, production(c.feature)]
        where.append(c.status_code < 400)
        if suite.scope != SHARED:
            where.append(c.tenant == suite.scope)  # a tenant's suite scores its own traffic
        query = (
            select(c.id, c.started_at, c.tenant, c.route, c.version, c.response_body)
            .where(*where)
            .order_by(c.started_at, c.id)
            .limit(READ_BATCH)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- scoring ---------------------------------------------------------------------------

    async def _score(self, jobs: Sequence[_Job], now: datetime) -> None:
        outcomes = await asyncio.to_thread(self._score_plain, jobs)
        slow = [(job, found) for job, found in zip(jobs, outcomes, strict=True) if job.scorers.slow]
        if slow:
            gate = asyncio.Semaphore(SLOW_CONCURRENCY)

            async def one(job: _Job, found: dict[str, Outcome]) -> None:
                async with gate:
                    found.update(await self._score_slow(job, now))

            await asyncio.gather(*(one(job, found) for job, found in slow))
        rows = []
        for job, found in zip(jobs, outcomes, strict=True):
            self.stats.scored += 1
            for name, (value, passed, reason) in found.items():
                self.stats.unusable += value is None
                rows.append(_row(job, name, value, passed, reason, now))
        await asyncio.to_thread(self._store, rows)

    @staticmethod
    def _score_plain(jobs: Sequence[_Job]) -> list[dict[str, Outcome]]:
        return [score_plain(job.scorers, Item(id=job.request["id"]), job.answer) for job in jobs]

    async def _score_slow(self, job: _Job, now: datetime) -> dict[str, Outcome]:
        online = job.suite.definition.online
        assert online is not None
        item = Item(id=job.request["id"])
        out: dict[str, Outcome] = {}
        for name, scorer in job.scorers.python.items():
            out[name] = await self._python.run(name, scorer, item, job.answer, online.timeout_s)
        if not job.scorers.judges:
            return out
        if not await self._may_judge(job, now):
            self.stats.dropped_cost += 1
            return out
        for name, (spec, scorer) in job.scorers.judges.items():
            if self.judges is None:
                out[name] = (None, None, f"scorer '{name}': no gateway to call the judge through")
                continue
            out[name] = await judged(
                self.judges,
                spec,
                scorer,
                tenant=job.request["tenant"],
                suite=job.suite.definition.name,
                request_id=job.request["id"],
                item=item,
                text=job.answer,
                timeout_s=online.timeout_s,
            )
        return out

    async def _may_judge(self, job: _Job, now: datetime) -> bool:
        """Whether the suite's judges are within their day's spend (read from the store at
        the first answer and every SPEND_EVERY answers judged)."""
        online = job.suite.definition.online
        assert online is not None
        if online.max_usd_per_day is None:
            return True
        key = (job.suite.scope, job.suite.definition.name)
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        spend = self._spend.get(key)
        if spend is None or spend.day != day or spend.judged >= SPEND_EVERY:
            routes = sorted({spec.judge_route for spec, _ in job.scorers.judges.values()})
            usd = await asyncio.to_thread(
                judge_spend, self.engine, key[1], job.suite.scope, routes, now
            )
            spend = self._spend[key] = _Spend(day, usd)
        if spend.usd >= online.max_usd_per_day:
            return False
        spend.judged += 1
        return True

    def _store(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            store_scores(conn, rows)  # and their SLI rollups (evals/score_rollups.py)


def _row(
    job: _Job, scorer: str, value: float | None, passed: bool | None, reason: str, now: datetime
) -> dict[str, Any]:
    return {
        "request_id": job.request["id"], "scorer": scorer,
        "suite": job.suite.definition.name, "scope": job.suite.scope,
        "tenant": job.request["tenant"], "route": job.request["route"],
        "version": job.request["version"], "value": value, "passed": passed,
        "reason": stored_text(reason)[:2000], "request_at": as_utc(job.request["started_at"]),
        "scored_at": now,
    }  # fmt: skip


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def online_metric(
    engine: Engine,
    route: str,
    since: datetime,
    bucket: timedelta,
    tenant: str | None,
    suite: str | None = None,
) -> list[dict[str, Any]]:
    """Each version's scores per suite, scorer and time bucket (by the requests' start):
    the number scored, the mean and the pass rate. A suite is its scope and name (`tenant`
    the requests', `suite` the suite's name: either narrows the rows read)."""
    s = online_scores.c
    where = [s.route == route, s.request_at >= since, s.value.is_not(None)]
    if tenant is not None:
        where.append(s.tenant == tenant)
    if suite is not None:
        where.append(s.suite == suite)
    query = select(s.version, s.scope, s.suite, s.scorer, s.request_at, s.value, s.passed)
    step = bucket.total_seconds()
    # (version, scope, suite, scorer, start) -> [scored, sum, passed]
    sums: dict[tuple[str | None, str, str, str, float], list[float]] = {}
    with engine.connect() as conn:
        for version, scope, name, scorer, at, value, passed in conn.execute(query.where(*where)):
            start = as_utc(at).timestamp() // step * step
            acc = sums.setdefault((version, scope, name, scorer, start), [0, 0.0, 0])
            acc[0] += 1
            acc[1] += float(value)
            acc[2] += 1 if passed else 0
    return [
        {
            "version": version,
            "suite": name,
            "suite_tenant": scope or None,
            "scorer": scorer,
            "start": datetime.fromtimestamp(start, UTC).isoformat(),
            "scored": int(n),
            "mean": total / n,
            "pass_rate": passes / n,
        }
        for (version, scope, name, scorer, start), (n, total, passes) in sorted(
            sums.items(), key=lambda kv: (str(kv[0][0]), *kv[0][1:])
        )
    ]
