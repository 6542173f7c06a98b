"""Drill: PostgreSQL stopped for 15 s under load; are the records back without a restart?

    .venv/bin/python bench/drills/store_outage.py [--outage-s 15] [--concurrency 16]

On 127.0.0.1 only: a private PostgreSQL, the mock upstream and one `trimtab serve` on it.
Closed-loop load runs 3 s with the store up, then PostgreSQL is shut down (fast shutdown)
for --outage-s seconds under the same load, then started again on the same data and port
while the load goes on for 3 s. Then: how many answered requests there were, how many were
spilled, and how long after PostgreSQL was back every request answered before then was in
the store and the spill file was empty, the gateway never restarted. One JSON line at the
end.
Bounded: about 30 s plus the outage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _harness import APP_KEY, KEYS, Gateway, table

from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.outage import StoppablePostgres


def config(upstream: str, store: str, folder: Path) -> dict[str, Any]:
    return {
        "store": {"url": store},
        "telemetry": {"spill_path": str(folder / "spill.jsonl")},
        "providers": {
            "upstream": {"kind": "openai", "base_url": upstream + "/v1", "api_key": "sk-up"}
        },
        "models": {"gpt-mock": {"provider": "upstream", "model": "mock-1"}},
        "keys": KEYS,
    }


class Load:
    """Closed-loop chat requests until stopped; the ids of the 200s, by phase."""

    def __init__(self, url: str, concurrency: int) -> None:
        self.url = url
        self.concurrency = concurrency
        self.phase = "before"
        self.answered: dict[str, list[str]] = {"before": [], "outage": [], "after": []}
        self.failed = 0
        self.running = True

    async def run(self) -> None:
        headers = {"authorization": f"Bearer {APP_KEY}"}
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.url, timeout=30, limits=limits, headers=headers
        ) as http:
            await asyncio.gather(*(self.worker(http, w) for w in range(self.concurrency)))

    async def worker(self, http: httpx.AsyncClient, w: int) -> None:
        i = 0
        while self.running:
            i += 1
            body = {
                "model": "gpt-mock",
                "messages": [{"role": "user", "content": f"outage drill {w}-{i}"}],
                "stream": i % 4 == 0,
            }
            phase = self.phase
            try:
                resp = await http.post("/v1/chat/completions", json=body)
                await resp.aread()
            except httpx.HTTPError:
                self.failed += 1
                continue
            if resp.status_code == 200:
                self.answered[phase].append(resp.headers["x-trimtab-request-id"])
            else:
                self.failed += 1


def stored(pg: StoppablePostgres, ids: set[str]) -> int:
    with psycopg.connect(pg.url, connect_timeout=2) as conn:
        rows = conn.execute("SELECT id FROM requests WHERE id = ANY(%s)", (list(ids),))
        return len(rows.fetchall())


def spilled_total(gw: Gateway) -> float:
    return sum(
        v for k, v in gw.metrics().items() if k.startswith("trimtab_telemetry_spilled_total")
    )


async def drill(gw: Gateway, pg: StoppablePostgres, args: argparse.Namespace) -> dict[str, Any]:
    load = Load(gw.url, args.concurrency)
    task = asyncio.create_task(load.run())
    await asyncio.sleep(3)
    load.phase = "outage"
    await asyncio.to_thread(pg.halt)
    await asyncio.sleep(args.outage_s)
    await asyncio.to_thread(pg.resume)
    back = time.monotonic()
    load.phase = "after"
    spill = Path(args.folder) / "spill.jsonl"
    # polled while the load goes on: when is everything answered before the store came
    # back (all of it, including what was spilled) in the store, and the spill file empty?
    earlier = {rid for phase in ("before", "outage") for rid in load.answered[phase]}
    visible_s: float | None = None
    while time.monotonic() < back + 60:
        spill_empty = not spill.exists() or spill.stat().st_size == 0
        if spill_empty and await asyncio.to_thread(stored, pg, earlier) == len(earlier):
            visible_s = time.monotonic() - back
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(0.0, back + 3 - time.monotonic()))
    load.running = False
    await task
    answered = {rid for ids in load.answered.values() for rid in ids}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the last answers of the load: committed promptly
        if await asyncio.to_thread(stored, pg, answered) == len(answered):
            break
        await asyncio.sleep(0.05)
    in_store = await asyncio.to_thread(stored, pg, answered)
    with psycopg.connect(pg.url) as conn:
        rows = conn.execute("SELECT count(*) FROM requests").fetchone()
        counted = conn.execute("SELECT COALESCE(SUM(count), 0) FROM rollups_minute").fetchone()
    assert rows is not None and counted is not None
    return {
        "answered": {k: len(v) for k, v in load.answered.items()},
        "answered_total": len(answered),
        "failed_requests": load.failed,
        "spilled": int(spilled_total(gw)),
        "in_store": in_store,
        "rows": int(rows[0]),
        "rollup_count": int(counted[0]),
        "seconds_from_store_back_to_earlier_visible": None
        if visible_s is None
        else round(visible_s, 2),
        "spill_bytes_at_end": spill.stat().st_size if spill.exists() else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage-s", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="trimtab-drill-") as tmp,
        MockUpstream() as upstream,
        StoppablePostgres() as pg,
    ):
        args.folder = tmp
        gw = Gateway(config(upstream.url, pg.url, Path(tmp)), Path(tmp))
        try:
            result = asyncio.run(drill(gw, pg, args))
        finally:
            gw.stop()
    a = result["answered"]
    print(
        f"PostgreSQL stopped for {args.outage_s:g} s under load at concurrency {args.concurrency}"
    )
    print(
        table(
            ["phase", "answered"],
            [["store up", a["before"]], ["store down", a["outage"]], ["store back", a["after"]]],
        )
    )
    print()
    print(
        table(
            ["figure", "value"],
            [
                ["records spilled", result["spilled"]],
                [
                    "answered requests in the store",
                    f"{result['in_store']} / {result['answered_total']}",
                ],
                ["rows / rollup count", f"{result['rows']} / {result['rollup_count']}"],
                [
                    "s from PostgreSQL back to all earlier records visible",
                    result["seconds_from_store_back_to_earlier_visible"],
                ],
                ["spill bytes at the end", result["spill_bytes_at_end"]],
            ],
        )
    )
    result["drill"] = "store_outage"
    result["outage_s"] = args.outage_s
    print(json.dumps(result, sort_keys=True))
    ok = result["in_store"] == result["answered_total"] and result["spill_bytes_at_end"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
