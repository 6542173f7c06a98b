"""The time of one SLO's status, and of the evaluator's cycle over 50 SLOs, over 30 days
of per-minute rollups, on SQLite.

    .venv/bin/python bench/slo_status.py [--runs 5] [--cycles 3]

Writes three requests every minute for 30 days (43,200 rollup rows, 1 % failing, latencies
100-2,060 ms) through the real TelemetryStore into a SQLite file in a temporary directory,
compacts the closed hours and days (telemetry.hourly.compact, as the evaluator does), then
times `slo.status.read_status` for an availability SLO (summed by the database) and
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

from sqlalchemy import Engine

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
    parser.add_argument(
        "--ten-million", action="store_true", help="only the 50 SLOs at 10 million requests"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="--ten-million on a throwaway PostgreSQL"
    )
    args = parser.parse_args()
    if args.ten_million:
        if args.postgres:
            from trimtab.testing.postgres_server import PostgresServer

            with PostgresServer() as server:
                ten_million(args.runs, server.sqlalchemy_url)
        else:
            ten_million(args.runs)
        return
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
        from trimtab.telemetry.hourly import compact

        while compact(engine, now, limit=100):  # as the evaluator's first cycles would
            pass
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


# -- 50 SLOs at 10 million requests (issue 14, "Speed and scale") -------------------------

ROUTES = 5
PER_MINUTE = 46  # answered requests per route and minute: 5 x 46 x 43,200 = 9.94 million


NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def ten_million(runs: int, url: str | None = None) -> None:
    """50 SLOs (10 per route: 4 availability, 4 error-rate classes, 2 latency) over 30 days
    of rollups holding 9.99 million requests (`fill`). Times each SLO's `read_status` and
    the grouped `read_statuses` (the evaluator's and GET /api/slos's) for the 40
    availability and error-rate SLOs, the 10 latency ones and all 50, fastest and median
    of `runs` after a warm-up; then 50 SLOs of which 20 are guardrail, negative-feedback
    and cost ones (the rows carry those counts and a cost sketch) (`mixes`).
    `--postgres`: the same on a throwaway PostgreSQL."""
    from trimtab.slo.evaluator import read_statuses

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite:///{Path(tmp) / 'slo10m.db'}")
        migrate(engine)
        fill(engine)
        definitions, mixed = mixes()
        counted = [d for d in definitions if d.sli.kind != "latency"]
        latency = [d for d in definitions if d.sli.kind == "latency"]
        now = NOW

        def timed(label: str, work: Any) -> None:
            work()  # warm-up
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                work()
                times.append(time.perf_counter() - t)
            print(
                f"{label}: fastest {min(times) * 1000:.0f} ms, "
                f"median {statistics.median(times) * 1000:.0f} ms of {runs}"
            )

        timed(
            f"read_status per SLO, {len(counted)} availability and error-rate SLOs",
            lambda: [read_status(engine, d, now) for d in counted],
        )
        timed(
            f"read_statuses (the evaluator's and GET /api/slos's), the same {len(counted)}",
            lambda: read_statuses(engine, counted, now),
        )
        timed(
            f"read_statuses, the {len(latency)} latency SLOs",
            lambda: read_statuses(engine, latency, now),
        )
        timed(
            f"read_statuses, all {len(definitions)} SLOs",
            lambda: read_statuses(engine, definitions, now),
        )
        timed(
            f"read_statuses, {len(mixed)} SLOs with guardrail, negative-feedback and cost ones",
            lambda: read_statuses(engine, mixed, now),
        )
        engine.dispose()


def fill(engine: Engine) -> None:
    """30 days up to `NOW` of rollups holding 9.99 million requests: 5 routes, a 200 row
    every minute (46 requests, their latencies and costs in the row's sketches, a
    guardrail firing every fifth minute, a negative feedback every seventh) and a 502 row
    every fourth minute (1 request); 270,000 rollup rows written in bulk (the shape the
    writer leaves; writing 10 million records through it would take hours here), their
    hours and days marked as the writer marks them and compacted into `rollups_hour`
    (timed)."""
    from ddsketch import DDSketch
    from sqlalchemy import insert

    from trimtab.store.tables import rollups
    from trimtab.telemetry.hourly import compact, mark_dirty
    from trimtab.telemetry.sketch import new_sketch, to_bytes

    first = NOW.replace(second=0, microsecond=0).timestamp() - 43199 * 60

    def sketch(values: list[float]) -> bytes:
        s: DDSketch = new_sketch()
        for v in values:
            s.add(v)
        return to_bytes(s)

    ok = [sketch([80.0 + ((k * 37 + j * 53) % 2400) for j in range(PER_MINUTE)]) for k in range(16)]
    # each request's cost: $0.001 to $0.031, a few dozen bins a row (the cost SLIs')
    costs = [sketch([0.001 + ((k * 11 + j * 7) % 300) / 10_000 for j in range(PER_MINUTE)])
             for k in range(16)]  # fmt: skip
    bad, empty = sketch([30_000.0]), to_bytes(new_sketch())
    t = time.perf_counter()
    rows: list[dict[str, Any]] = []
    total = 0

    def flush() -> None:
        with engine.begin() as conn:
            conn.execute(insert(rollups), rows)
        rows.clear()

    for m in range(43200):
        minute = datetime.fromtimestamp(first + 60 * m, UTC)
        for r in range(ROUTES):
            base = {
                "minute": minute, "model": "gpt-mock", "provider": "upstream",
                "tenant": "acme", "feature": "", "route": f"route-{r}", "version": "1",
                "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "ttft_sketch": empty,
                "cost_sketch": None, "negative_feedback": 0, "guardrail_fired": 0,
            }  # fmt: skip
            rows.append(
                {**base, "status_code": 200, "count": PER_MINUTE, "errors": 0,
                 "latency_sketch": ok[(m + r) % len(ok)],
                 "cost_sketch": costs[(m + r) % len(costs)],
                 "negative_feedback": 1 if m % 7 == 0 else 0,
                 "guardrail_fired": 1 if m % 5 == 0 else 0}
            )  # fmt: skip
            total += PER_MINUTE
            if m % 4 == 0:
                rows.append(
                    {**base, "status_code": 502, "count": 1, "errors": 1,
                     "latency_sketch": bad}
                )  # fmt: skip
                total += 1
        if len(rows) >= 20_000:
            flush()
    flush()
    print(f"{total:,} requests in rollup rows written in {time.perf_counter() - t:.0f} s")
    with engine.begin() as conn:  # as the writer marks each hour it writes into
        mark_dirty(conn, (datetime.fromtimestamp(first + 3600 * h, UTC) for h in range(721)))
    t = time.perf_counter()
    hours = 0
    while cleared := compact(engine, NOW, limit=100):
        hours += cleared
    print(
        f"{hours} hours and days compacted into rollups_hour in "
        f"{time.perf_counter() - t:.0f} s (telemetry.hourly.compact)"
    )


def mixes() -> tuple[list[SloDefinition], list[SloDefinition]]:
    """The two mixes of 50 SLOs over `fill`'s 5 routes: per route 4 availability, 4
    error-rate and 2 latency SLOs; and per route 2 availability, 2 error-rate, 2 latency,
    a guardrail, a negative-feedback and 2 cost SLOs (two ceilings)."""
    kinds = [
        "{kind: availability}, objective: 0.999",
        "{kind: availability}, objective: 0.99",
        "{kind: availability}, objective: 0.995",
        "{kind: availability}, objective: 0.9999",
        "{kind: error_rate, class: timeout}, objective: 0.999",
        "{kind: error_rate, class: bad_gateway}, objective: 0.99",
        "{kind: error_rate, class: unavailable}, objective: 0.999",
        "{kind: error_rate, class: server}, objective: 0.99",
        "{kind: latency, threshold_ms: 500}, objective: 0.5",
        "{kind: latency, threshold_ms: 2000}, objective: 0.9",
    ]
    newer = [kinds[0], kinds[1], kinds[4], kinds[5], kinds[8], kinds[9],
             "{kind: guardrail}, objective: 0.99",
             "{kind: negative_feedback}, objective: 0.95",
             "{kind: cost, ceiling_usd: 0.02}, objective: 0.9",
             "{kind: cost, ceiling_usd: 0.01}, objective: 0.5"]  # fmt: skip
    out = []
    for prefix, mix in (("r", kinds), ("n", newer)):
        lines = ["slos:"]
        for r in range(ROUTES):
            for k, kind in enumerate(mix):
                lines.append(f"  {prefix}{r}-{k}: {{route: route-{r}, sli: {kind}}}")
        out.append(load_slos("\n".join(lines) + "\n"))
    return out[0], out[1]


if __name__ == "__main__":
    main()
