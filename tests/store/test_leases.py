"""Named leases on SQLite and PostgreSQL: one holder at a time, renewal, expiry and
takeover, release, and many holders racing for one name from their own connections."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from trimtab.store.engine import make_engine
from trimtab.store.leases import Leases, holder_id

T0 = datetime(2026, 12, 2, 7, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_first_holder_takes_it_and_the_second_is_refused(engine: Engine) -> None:
    leases = Leases(engine)
    first = leases.acquire("job", "a", 30, at(0))
    assert first is not None
    assert (first.holder, first.expires_at, first.acquired_at, first.epoch) == (
        "a",
        at(30),
        at(0),
        1,
    )
    assert leases.acquire("job", "b", 30, at(10)) is None
    held = leases.holder("job", at(10))
    assert held is not None and held.holder == "a"
    # another name is another lease
    other = leases.acquire("other-job", "b", 30, at(10))
    assert other is not None and other.holder == "b"


def test_renewing_extends_it_and_keeps_when_it_was_acquired(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.acquire("job", "a", 30, at(0)) is not None
    renewed = leases.acquire("job", "a", 30, at(25))
    assert renewed is not None
    assert (renewed.expires_at, renewed.acquired_at, renewed.epoch) == (at(55), at(0), 1)
    # without the renewal b would have it at 40; with it, not before 55
    assert leases.acquire("job", "b", 30, at(40)) is None
    assert leases.acquire("job", "b", 30, at(54.9)) is None


def test_a_holder_that_stops_renewing_loses_it_after_its_ttl(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.acquire("job", "a", 30, at(0)) is not None
    assert leases.holder("job", at(29.9)) is not None
    assert leases.holder("job", at(30)) is None  # expired: nobody holds it
    taken = leases.acquire("job", "b", 30, at(30))
    assert taken is not None
    assert (taken.holder, taken.acquired_at, taken.expires_at, taken.epoch) == (
        "b",
        at(30),
        at(60),
        2,
    )
    # the old holder's renewal now fails: it must stop acting
    assert leases.acquire("job", "a", 30, at(31)) is None
    held = leases.holder("job", at(31))
    assert held is not None and held.holder == "b"


def test_release_hands_it_over_at_once_and_only_the_holder_can(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.acquire("job", "a", 30, at(0)) is not None
    assert leases.release("job", "b") is False  # not b's
    assert leases.holder("job", at(1)) is not None
    assert leases.release("job", "a") is True
    assert leases.holder("job", at(1)) is None
    taken = leases.acquire("job", "b", 30, at(1))
    assert taken is not None and taken.epoch == 2
    assert leases.release("never-taken", "a") is False


def test_a_holder_that_regains_its_own_expired_lease_keeps_the_epoch(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.acquire("job", "a", 30, at(0)) is not None
    again = leases.acquire("job", "a", 30, at(100))  # expired, nobody took it meanwhile
    assert again is not None and again.epoch == 1


def test_a_ttl_must_be_positive(engine: Engine) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        Leases(engine).acquire("job", "a", 0, at(0))


def test_holder_ids_differ_between_holders() -> None:
    assert holder_id() != holder_id()


@pytest.mark.parametrize("taken_before", [False, True], ids=["new-name", "expired"])
def test_many_holders_racing_get_one_winner(
    engine: Engine, store_url: str, taken_before: bool
) -> None:
    """Eight holders, each on its own engine (its own connections, as separate processes
    have), ask for the same name at the same moment: exactly one gets it, whether the name
    was never taken (the INSERT race) or its lease had just expired (the UPDATE race)."""
    if taken_before:
        assert Leases(engine).acquire("race", "old", 30, at(0)) is not None
    when = at(60)
    n = 8
    engines = [make_engine(store_url) for _ in range(n)]
    barrier = threading.Barrier(n)
    won: list[str] = []
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        try:
            barrier.wait()
            if Leases(engines[i]).acquire("race", f"h{i}", 30, when) is not None:
                won.append(f"h{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    assert len(won) == 1
    lease = Leases(engine).holder("race", when)
    assert lease is not None and lease.holder == won[0]
    assert lease.epoch == (2 if taken_before else 1)
