"""The telemetry store's transaction: rows and their rollups, exact with several writers."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select

from tests.telemetry.support import expected_totals, open_store, rec, rollup_totals
from trimtab.store.tables import rollups
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rollups import fold

WRITERS = 4
BATCHES = 15
PER_BATCH = 8


def test_writers_in_parallel_merge_every_rollup_exactly(
    store_url: str, engines: list[Engine]
) -> None:
    """Gateways sharing a store, each with its own engine, write batches of the same keys
    at once: no rollup row is created twice and no delta is lost or counted twice (the
    row is locked while merged; a key another writer created meanwhile is merged into).
    Also run against PostgreSQL through the store_url fixture."""
    stores = [open_store(store_url, engines, migrated=i == 0) for i in range(WRITERS)]
    batches: list[list[list[RequestRecord]]] = [
        [[rec(10_000 * w + PER_BATCH * b + i) for i in range(PER_BATCH)] for b in range(BATCHES)]
        for w in range(WRITERS)
    ]
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def write(w: int) -> None:
        start.wait()
        try:
            for batch in batches[w]:
                stores[w].write(batch)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    everything = [r for per_writer in batches for batch in per_writer for r in batch]
    assert rollup_totals(stores[0]) == expected_totals(everything)
    with stores[0].engine.connect() as conn:
        keys = conn.execute(select(func.count()).select_from(rollups)).scalar_one()
    assert keys == len(fold(everything))  # one row per key
    # and each row's latency sketch holds its key's records
    folded = fold(everything)
    since = min(key[0] for key in folded)
    sketched = {key: r.latency.count for key, r in stores[0].rollups_since(since, None)}
    assert sketched == {key: r.count for key, r in folded.items()}
