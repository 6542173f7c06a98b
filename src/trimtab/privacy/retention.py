"""The retention job: bodies, request rows and rollups older than their TTL leave the store.

Each tenant's TTLs are its own `storage.tenants.T.retention` keys, each key it leaves out
the gateway's `storage.retention` (none: kept). A run takes the lease `retention` (one
process does the work; the queries are idempotent, so two running at once would only
share it), then for each TTL deletes in batches of `retention_batch` rows, each batch its
own short transaction in a worker thread, so the writer's commits go on in between; a run
stops after `max_batches` batches of each kind and goes on at the next interval.

The queries are telemetry's (telemetry/retention.py) and, for `score_rollups`, evals'
(evals/score_rollups.py): they own the tables.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from trimtab.config import RetentionConfig, StorageConfig
from trimtab.evals.score_rollups import delete_score_rollups
from trimtab.refresher import Periodic
from trimtab.store.leases import Leases, holder_id
from trimtab.telemetry import retention as q

log = logging.getLogger("trimtab.privacy")
LEASE = "retention"
Step = Callable[[Engine, q.Tenants, datetime, int], int]
# each TTL's steps and the count each adds to; rows first: a row deleted needs no body
# nulled. The SLIs' own rollups (sessions' costs, online scores per minute) go with the
# rollups' TTL
STEPS: dict[str, tuple[tuple[str, Step], ...]] = {
    "rows_days": (("requests", q.delete_requests),),
    "bodies_days": (("bodies", q.null_bodies),),
    "rollups_days": (
        ("rollups", q.delete_rollups),
        ("sli_rows", q.delete_session_costs),
        ("sli_rows", delete_score_rollups),
    ),
}


@dataclass
class Cleaned:
    """What one run removed: bodies nulled, request rows and rollup rows deleted, and the
    rows of `session_costs` and `score_rollups` (`sli_rows`)."""

    bodies: int = 0
    requests: int = 0
    rollups: int = 0
    sli_rows: int = 0
    more: bool = False  # a kind hit max_batches: the next run goes on
    by_tenant: dict[str, dict[str, int]] = field(default_factory=dict)


def plans(config: StorageConfig) -> list[tuple[str, q.Tenants, float]]:
    """(TTL key, which tenants, days) for every TTL that is set."""
    out: list[tuple[str, q.Tenants, float]] = []
    for key in STEPS:
        own = {
            name: getattr(t.retention, key)
            for name, t in config.tenants.items()
            if t.retention is not None and getattr(t.retention, key) is not None
        }
        for name, days in sorted(own.items()):
            out.append((key, q.Tenants(only=name), days))
        default = getattr(config.retention, key)
        if default is not None:
            out.append((key, q.Tenants(but=frozenset(own)), default))
    return out


def effective(config: StorageConfig, tenant: str) -> RetentionConfig:
    """One tenant's TTLs, its own over the gateway's."""
    own = config.tenants.get(tenant)
    base = config.retention.model_dump()
    if own is not None and own.retention is not None:
        base.update(own.retention.model_dump(exclude_none=True))
    return RetentionConfig(**base)


class RetentionJob:
    def __init__(
        self,
        engine: Engine,
        config: StorageConfig,
        *,
        max_batches: int = 100,
        lease_s: float | None = None,
    ) -> None:
        self._engine = engine
        self._plans = plans(config)
        self._batch = config.retention_batch
        self._interval = config.retention_interval_s
        self._max_batches = max_batches
        self._leases = Leases(engine)
        self._holder = holder_id()
        self._lease_s = lease_s if lease_s is not None else max(2 * self._interval, 60.0)
        self._loop = Periodic(
            "trimtab-retention",
            self.step,
            self._interval,
            failed="the retention job failed; it runs again at the next interval",
            logger=log,
            wait_first=False,
        )

    @property
    def configured(self) -> bool:
        return bool(self._plans)

    def start(self) -> None:
        if self._plans:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._plans:
            await asyncio.to_thread(self._leases.release, LEASE, self._holder)

    async def step(self) -> Cleaned | None:
        """One run, if this process holds the lease; None when another does."""
        lease = await asyncio.to_thread(self._leases.acquire, LEASE, self._holder, self._lease_s)
        if lease is None:
            return None
        return await self.run(datetime.now(UTC))

    async def run(self, now: datetime) -> Cleaned:
        done = Cleaned()
        for key, tenants, days in self._plans:
            before = now - timedelta(days=days)
            for count, step in STEPS[key]:
                for _ in range(self._max_batches):
                    n = await asyncio.to_thread(step, self._engine, tenants, before, self._batch)
                    setattr(done, count, getattr(done, count) + n)
                    who = tenants.only or "*"
                    by = done.by_tenant.setdefault(who, {})
                    by[count] = by.get(count, 0) + n
                    if n < self._batch:
                        break
                else:
                    done.more = True
        if done.bodies or done.requests or done.rollups or done.sli_rows:
            log.info(
                "retention: %d bodies nulled, %d requests, %d rollup and %d SLI rows deleted%s",
                done.bodies,
                done.requests,
                done.rollups,
                done.sli_rows,
                " (more next time)" if done.more else "",
            )
        return done
