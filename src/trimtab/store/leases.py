"""Named leases: at most one holder per name at a time, for as long as it keeps renewing.

Several trimtab processes may share one store; some work must be done by one of them only
(the SLO evaluator, so two processes do not page twice; later the alert outbox). A lease
is a row of `leases`: its name, its holder and its expiry. Taking and renewing it is one
conditional UPDATE (the row is still ours, or it has expired) or, for a name never taken,
one INSERT that the primary key lets through for one process only. Both databases decide
it in the row: PostgreSQL re-checks the UPDATE's condition on the row a concurrent
transaction committed (READ COMMITTED), SQLite runs one writer at a time.

A holder that stops renewing (killed, hung, cut off from the store) loses the lease when
its TTL runs out; the next one to ask takes it over and `epoch` goes up by one. Expiry is
judged on the clock of the process asking: the hosts' clocks must agree to well within
the TTL. A holder must renew before it acts on what it read while it held the lease
(`SloEvaluator` renews before it emits), so a pause longer than the TTL cannot make two
holders act.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from trimtab.store.engine import as_utc
from trimtab.store.tables import leases

# what a released lease's expiry is set to: in the past for every clock
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)


def holder_id() -> str:
    """A name for this process as a holder: host, pid and a random part (a restarted
    process with the same pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime
    acquired_at: datetime  # when this holder took it (renewals keep it)
    epoch: int  # how many times it has changed hands, +1 (a fencing token)

    def valid_at(self, now: datetime) -> bool:
        return now < self.expires_at


class Leases:
    """Acquire, renew, release and read named leases in `leases`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire(
        self, name: str, holder: str, ttl_s: float, now: datetime | None = None
    ) -> Lease | None:
        """Take `name` for `ttl_s` seconds from `now`, or renew it when `holder` has it.
        None when another holder's lease has not expired yet."""
        if ttl_s <= 0:
            raise ValueError(f"a lease's ttl must be positive, not {ttl_s}")
        at = (now or datetime.now(UTC)).astimezone(UTC)
        expires = at + timedelta(seconds=ttl_s)
        c = leases.c
        ours = c.holder == holder
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(c.name == name, ours | (c.expires_at <= at))
                .values(
                    holder=holder,
                    expires_at=expires,
                    renewed_at=at,
                    acquired_at=case((ours, c.acquired_at), else_=at),
                    epoch=case((ours, c.epoch), else_=c.epoch + 1),
                )
            ).rowcount
        if not taken:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(leases).values(
                            name=name,
                            holder=holder,
                            expires_at=expires,
                            acquired_at=at,
                            renewed_at=at,
                            epoch=1,
                        )
                    )
            except IntegrityError:  # the row exists: someone else holds it
                return None
        lease = self.current(name)
        # between our write and this read another holder can only have taken it if our
        # TTL ran out meanwhile; then it is not ours
        if lease is None or lease.holder != holder:
            return None
        return lease

    def release(self, name: str, holder: str) -> bool:
        """Give `name` up at once when `holder` has it (the next one to ask takes it over);
        False when it was not ours."""
        c = leases.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(leases).where(c.name == name, c.holder == holder).values(expires_at=RELEASED)
            ).rowcount
        return bool(done)

    def current(self, name: str) -> Lease | None:
        """The row of `name` as it stands (maybe expired); None when never taken."""
        with self.engine.connect() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name)).mappings().first()
        if row is None:
            return None
        return Lease(
            row["name"],
            row["holder"],
            as_utc(row["expires_at"]),
            as_utc(row["acquired_at"]),
            int(row["epoch"]),
        )

    def holder(self, name: str, now: datetime | None = None) -> Lease | None:
        """Who holds `name` at `now`: None when nobody does (never taken, released or
        expired)."""
        lease = self.current(name)
        at = (now or datetime.now(UTC)).astimezone(UTC)
        return lease if lease is not None and lease.valid_at(at) else None
