"""The reads of the eval-score and cost-per-session SLIs over 30 days at 10 million
requests, on SQLite (or a throwaway PostgreSQL).

    .venv/bin/python bench/sli_reads.py [--requests 10000000] [--routes 5] [--sample 0.05]
        [--per-session 6] [--runs 5] [--postgres] [--only scores|sessions]

Fills `score_rollups` and `session_costs` in bulk as the writers would leave them for
`--requests` requests over 30 days on `--routes` routes (inserted directly: 10 million
records through the writer would take hours here): each route's scores are `--sample`
of its requests, one scorer, values uniform in [0, 1] (so nearly every score has a bin
of its own in its minute: the most rows), spread evenly over the minutes, in minute,
hour and day rows; its sessions
hold `--per-session` requests each, costs uniform in $0-1, each starting at a random
minute. Then times one route's `score_windows` and `session_cost_windows` over the spans
a 30-day SLO's status and alert rules read (5 m, 30 m, 1 h, 6 h, 3 d, 30 d), after a
warm-up, and prints the fastest and the median of `--runs`, with the rows each read
covers.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from trimtab.slo.score_reads import score_windows
from trimtab.slo.session_cost_reads import session_cost_windows
from trimtab.slo.spec import Selector
from trimtab.store.engine import make_engine, migrate
from trimtab.store.tables import score_rollups, session_costs

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MINUTES = 30 * 24 * 60
SPANS = [5, 30, 60, 360, 3 * 24 * 60, MINUTES]
SPANS_OF_ROWS = (1, 60, 24 * 60)


def starts(minute: datetime) -> tuple[datetime, datetime, datetime]:
    return minute, minute.replace(minute=0), minute.replace(hour=0, minute=0)


def fill(
    engine: Engine, requests: int, routes: int, sample: float, per_session: int, only: str | None
) -> None:
    rng = random.Random(14)
    first = END - timedelta(minutes=MINUTES - 1)
    per_route = requests // routes
    for r in range(routes):
        route = f"route-{r}"
        bins: Counter[tuple[int, datetime, int]] = Counter()
        passed: Counter[tuple[int, datetime, int]] = Counter()
        for i in range(int(per_route * sample)):
            minute = first + timedelta(minutes=i * MINUTES // int(per_route * sample))
            b = rng.randrange(101)
            # as evals/score_rollups.py writes it: the minute's, the hour's and the day's row
            for span, start in zip(SPANS_OF_ROWS, starts(minute), strict=True):
                bins[span, start, b] += 1
                passed[span, start, b] += b >= 70
        rows = [
            {"suite": "live", "scope": "", "scorer": "judge", "span": span, "minute": start,
             "route": route, "tenant": "acme", "version": "v1", "bin": b, "count": n,
             "passed": passed[span, start, b]}
            for (span, start, b), n in bins.items()
        ]  # fmt: skip
        sessions = [
            {"tenant": "acme", "route": route, "feature": "", "session_key": f"{r:02d}{s:030x}",
             "first_minute": (at := first + timedelta(minutes=rng.randrange(MINUTES))),
             "last_minute": at + timedelta(minutes=rng.randrange(30)),
             "requests": per_session, "cost_usd": rng.random()}
            for s in range(per_route // per_session if only != "scores" else 0)
        ]  # fmt: skip
        if only == "sessions":
            rows = []
        with engine.begin() as conn:
            for table, values in ((score_rollups, rows), (session_costs, sessions)):
                for i in range(0, len(values), 5000):
                    conn.execute(insert(table), values[i : i + 5000])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def timed(runs: int, read: Callable[[], object]) -> tuple[float, float, object]:
    got = read()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        got = read()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), got


def run(url: str, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    migrate(engine)
    t = time.perf_counter()
    fill(engine, args.requests, args.routes, args.sample, args.per_session, args.only)
    with engine.connect() as conn:
        scores = conn.scalar(
            select(func.count()).select_from(score_rollups).where(score_rollups.c.span == 1)
        )
        sessions = conn.scalar(select(func.count()).select_from(session_costs))
    print(f"{engine.dialect.name}: filled {scores:,} score rows and {sessions:,} sessions "
          f"in {time.perf_counter() - t:.0f} s")  # fmt: skip
    selector = Selector(route="route-0")

    def score() -> object:
        with engine.connect() as conn:
            return score_windows(conn, selector, "live", "judge", 0.7, END, SPANS, scope="")

    def cost() -> object:
        with engine.connect() as conn:
            return session_cost_windows(conn, selector, 0.5, END, SPANS)

    for name, read, rows in (
        ("score_windows", score, scores // args.routes),
        ("session_cost_windows", cost, sessions // args.routes),
    ):
        if not rows:
            continue
        fast, median, got = timed(args.runs, read)
        print(f"  {name} (one route, ~{rows:,} rows in 30 d): fastest {fast * 1000:.1f} ms, "
              f"median {median * 1000:.1f} ms of {args.runs}; 30 d: {got[MINUTES]}")  # type: ignore[index]  # fmt: skip
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--routes", type=int, default=5)
    parser.add_argument("--sample", type=float, default=0.05)
    parser.add_argument("--per-session", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--only", choices=["scores", "sessions"], default=None)
    args = parser.parse_args()
    if args.postgres:
        from trimtab.testing.postgres_server import PostgresServer

        with PostgresServer() as server:
            run(server.sqlalchemy_url, args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'sli.db'}", args)


if __name__ == "__main__":
    main()
