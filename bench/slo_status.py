"""The time of one SLO's status, and of the evaluator's cycle over 50 SLOs, over 30 days
of per-minute rollups, on SQLite.

    .venv/bin/python bench/slo_status.py [--runs 5] [--cycles 3]

Writes three requests every minute for 30 days (43,200 rollup rows, 1 % failing, latencies
100-2,060 ms) through the real TelemetryStore into a SQLite file in a temporary directory,
then times `slo.status.read_status` for an availability SLO (summed by the database) and
a latency SLO (each row's sketch decoded), after one warm-up each, and prints the fastest
and the median of `--runs`.

Then it applies 50 SLOs over the same route and times `SloEvaluator.cycle` (the lease,
every SLO's status, the signals; no rollout in progress) for two mixes: 50 availability
and error-rate SLOs, and 40 of them with 10 latency SLOs; fastest and median of
`--cycles`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trimtab.slo.evaluator import SloEvaluator
from trimtab.slo.spec import SloDefinition, load_slos
from trimtab.slo.status import read_status
from trimtab.slo.store import SloStore
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
    parser.add_argument("--cycles", type=int, default=3)
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
        for latency in (0, 10):
            # the same 50 names: the second apply turns ten of them into latency SLOs
            SloStore(engine).apply(fifty(latency), scope="", actor="bench")
            evaluator: SloEvaluator[Any] = SloEvaluator(engine, lambda s: None, holder="bench")
            evaluator.cycle(now)  # warm-up
            times = []
            for _ in range(args.cycles):
                t = time.perf_counter()
                cycle = evaluator.cycle(now)
                times.append(time.perf_counter() - t)
            print(
                f"evaluator cycle, {cycle.slos} SLOs ({latency} latency), {len(cycle.signals)} "
                f"signals: fastest {min(times) * 1000:.0f} ms, "
                f"median {statistics.median(times) * 1000:.0f} ms of {args.cycles}"
            )
        engine.dispose()


def fifty(latency: int) -> list[SloDefinition]:
    """50 SLOs on the route: `latency` of them latency SLOs, the rest alternately
    availability and error rates of each class."""
    classes = ("timeout", "bad_gateway", "unavailable", "rate_limited", "server")
    lines = ["slos:"]
    for i in range(50):
        if i < latency:
            sli = f"{{kind: latency, threshold_ms: {500 + 100 * i}}}"
        elif i % 2:
            sli = "{kind: availability}"
        else:
            sli = f"{{kind: error_rate, class: {classes[i % len(classes)]}}}"
        lines.append(f"  slo-{i:02d}: {{route: support, sli: {sli}, objective: 0.99}}")
    return load_slos("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
