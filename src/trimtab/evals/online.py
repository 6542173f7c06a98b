"""Online scoring: a share of a route's production answers scored in the background.

An applied suite of a route with `online: {sample: 0.05, scorers: [...]}` has its
reference-free scorers (suites.ONLINE_KINDS) run on about that share of the route's
recorded answers. Nothing happens on the request path: `OnlineScoring` reads what the
gateway recorded (so the answers must be stored: `storage.bodies` keeping them), picks a
request when the hash of its id falls under the share (every process picks the same
ones), queues it in a bounded queue (a full queue drops it, counted), scores at most the
suite's `max_per_minute` (its own budget; past it, dropped and counted), and stores each
score against the request (`online_scores`, one row per request and scorer: two
processes scoring the same request write it once). Eval runs' own calls are never scored.

`online_metric` gives the scores per route version over time (GET /api/evals/online);
`rollouts.arms.ArmReader.quality` reads them per arm for the canary's `quality_score`.
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
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.evals.datasets import Item
from trimtab.evals.from_requests import observed_answer
from trimtab.evals.scorers import Answer, ScorerError, build
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
    unusable: int = 0  # sampled, but no stored answer to score
    dropped_queue: int = 0
    dropped_budget: int = 0

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
            await asyncio.to_thread(self._score, batch, at)
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
                    jobs.append(_Job(suite, row, answer))
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

    def _score(self, jobs: Sequence[_Job], now: datetime) -> None:
        rows: list[dict[str, Any]] = []
        for job in jobs:
            online = job.suite.definition.online
            assert online is not None
            item = Item(id=job.request["id"])
            for spec in online.scorers:
                try:
                    score = build(spec)(item, Answer(job.answer))
                    value, passed, reason = score.value, score.passed, score.reason
                except ScorerError as exc:
                    value, passed, reason = None, None, str(exc)
                rows.append(
                    {
                        "request_id": job.request["id"], "scorer": spec.name,
                        "suite": job.suite.definition.name, "scope": job.suite.scope,
                        "tenant": job.request["tenant"], "route": job.request["route"],
                        "version": job.request["version"], "value": value, "passed": passed,
                        "reason": reason, "request_at": as_utc(job.request["started_at"]),
                        "scored_at": now,
                    }
                )  # fmt: skip
            self.stats.scored += 1
        with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            for start in range(0, len(rows), 500):
                conn.execute(
                    insert(online_scores).values(rows[start : start + 500]).on_conflict_do_nothing()
                )


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
) -> list[dict[str, Any]]:
    """Each version's scores per scorer and time bucket (by the requests' start): the
    number scored, the mean and the pass rate."""
    s = online_scores.c
    where = [s.route == route, s.request_at >= since, s.value.is_not(None)]
    if tenant is not None:
        where.append(s.tenant == tenant)
    query = select(s.version, s.scorer, s.request_at, s.value, s.passed).where(*where)
    step = bucket.total_seconds()
    sums: dict[tuple[str | None, str, float], list[float]] = {}
    with engine.connect() as conn:
        for version, scorer, at, value, passed in conn.execute(query):
            start = as_utc(at).timestamp() // step * step
            acc = sums.setdefault((version, scorer, start), [0, 0.0, 0])
            acc[0] += 1
            acc[1] += float(value)
            acc[2] += 1 if passed else 0
    return [
        {
            "version": version,
            "scorer": scorer,
            "start": datetime.fromtimestamp(start, UTC).isoformat(),
            "scored": int(n),
            "mean": total / n,
            "pass_rate": passes / n,
        }
        for (version, scorer, start), (n, total, passes) in sorted(
            sums.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])
        )
    ]
