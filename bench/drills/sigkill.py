"""Drill: SIGKILL under load; does every answered request have its row after a restart?

    .venv/bin/python bench/drills/sigkill.py [--requests 1800] [--concurrency 32] [--runs 3]
                                             [--no-journal]

On 127.0.0.1 only: the mock upstream and one `trimtab serve` on SQLite. Each run sends
--requests chat requests (a third streamed), --concurrency at a time, and SIGKILLs the
gateway once 80 % of them have been answered (the rest are in flight or unsent). The
gateway is started again on the same store, and each request id the client got a 200 for
is looked up. Prints answered / recorded / lost per run and one JSON line. --no-journal
runs with `telemetry.journal: false`, the behaviour before the journal. Bounded: about
10 s a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _harness import APP_KEY, KEYS, Gateway, table

from trimtab.testing.mock_upstream import MockUpstream


def config(upstream: str, folder: Path, journal: bool) -> dict[str, Any]:
    return {
        "store": {"url": f"sqlite:///{folder}/trimtab.db"},
        "telemetry": {"spill_path": str(folder / "spill.jsonl"), "journal": journal},
        "providers": {
            "upstream": {"kind": "openai", "base_url": upstream + "/v1", "api_key": "sk-up"}
        },
        "models": {"gpt-mock": {"provider": "upstream", "model": "mock-1"}},
        "keys": KEYS,
    }


async def load_then_kill(gw: Gateway, n: int, concurrency: int, kill_at: int) -> list[str]:
    """The request ids of the 200s received before the kill."""
    answered: list[str] = []
    pending = iter(range(n))
    killed = asyncio.Event()
    headers = {"authorization": f"Bearer {APP_KEY}"}

    async def worker(http: httpx.AsyncClient) -> None:
        for i in pending:
            if killed.is_set():
                return
            body = {
                "model": "gpt-mock",
                "messages": [{"role": "user", "content": f"drill request {i}"}],
                "stream": i % 3 == 0,
            }
            try:
                resp = await http.post("/v1/chat/completions", json=body, headers=headers)
                await resp.aread()
            except httpx.HTTPError:
                continue
            if resp.status_code == 200 and not killed.is_set():
                answered.append(resp.headers["x-trimtab-request-id"])
                if len(answered) >= kill_at:
                    gw.proc.send_signal(signal.SIGKILL)
                    killed.set()

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=gw.url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return answered


def run_once(upstream: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="trimtab-drill-") as tmp:
        folder = Path(tmp)
        cfg = config(upstream, folder, not args.no_journal)
        gw = Gateway(cfg, folder)
        t0 = time.monotonic()
        answered = asyncio.run(
            load_then_kill(gw, args.requests, args.concurrency, int(args.requests * 0.8))
        )
        gw.proc.wait(timeout=30)
        load_s = time.monotonic() - t0
        again = Gateway(cfg, folder)  # replays what the killed process left
        try:
            with sqlite3.connect(folder / "trimtab.db") as db:
                rows = {r[0] for r in db.execute("SELECT id FROM requests")}
                rollup = db.execute("SELECT COALESCE(SUM(count), 0) FROM rollups_minute")
                counted = int(rollup.fetchone()[0])
        finally:
            again.stop()
    lost = len(set(answered) - rows)
    return {
        "answered": len(answered),
        "rows_after_restart": len(rows),
        "recorded": len(answered) - lost,
        "lost": lost,
        "rollup_count": counted,
        "load_s": round(load_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1800)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-journal", action="store_true")
    args = parser.parse_args()
    with MockUpstream() as upstream:
        runs = [run_once(upstream.url, args) for _ in range(args.runs)]
    rows = [
        [i + 1, r["answered"], r["recorded"], r["lost"], r["rows_after_restart"], r["rollup_count"]]
        for i, r in enumerate(runs)
    ]
    journal = "off" if args.no_journal else "on"
    print(f"SIGKILL after 80 % of {args.requests} requests at concurrency {args.concurrency}")
    print(f"(journal {journal}; rows include requests in flight at the kill)")
    print(table(["run", "answered", "recorded", "lost", "rows", "rollup count"], rows))
    result = {
        "drill": "sigkill",
        "journal": not args.no_journal,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "runs": runs,
        "lost_total": sum(r["lost"] for r in runs),
        "answered_total": sum(r["answered"] for r in runs),
    }
    print(json.dumps(result, sort_keys=True))
    return 0 if args.no_journal or result["lost_total"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
