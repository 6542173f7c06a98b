"""The time of one SLO's status over 30 days of per-minute rollups, on SQLite.

    .venv/bin/python bench/slo_status.py [--runs 5]

Writes three requests every minute for 30 days (43,200 rollup rows, 1 % failing, latencies
100-2,060 ms) through the real TelemetryStore into a SQLite file in a temporary directory,
then times `slo.status.read_status` for an availability SLO (summed by the database) and
a latency SLO (each row's sketch decoded), after one warm-up each, and prints the fastest
and the median of `--runs`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from trimtab.slo.spec import load_slos
from trimtab.slo.status import read_status
from trimtab.store.engine import make_engine, migrate
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

SLOS = """
slos:
  availability: {route: support, sli: {kind: availability}, objective: 0.999}
  latency: {route: support, sli: {kind: latency, threshold_ms: 1000}, objective: 0.9}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'slo.db'}")
        migrate(engine)
        store = TelemetryStore(engine)
        end = now.timestamp()
        records = [
            RequestRecord(
                id=f"r{i}",
                started_at=end - 20 * i - 1,
                api="openai",
                operation="chat",
                tenant="acme",
                route="support",
                status_code=502 if i % 97 == 0 else 200,
                duration_ms=100.0 + (i % 50) * 40,
            )
            for i in range(3 * 43200)
        ]
        for i in range(0, len(records), 10000):
            store.write(records[i : i + 10000])
        for slo in load_slos(SLOS):
            read_status(engine, slo, now)  # warm-up
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                status = read_status(engine, slo, now)
                times.append(time.perf_counter() - t)
            print(
                f"{slo.name}: {status.counts.valid} requests; fastest {min(times) * 1000:.0f} ms, "
                f"median {statistics.median(times) * 1000:.0f} ms of {args.runs}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
