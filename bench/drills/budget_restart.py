"""Drill: does a block budget keep its spend when Redis restarts empty?

    .venv/bin/python bench/drills/budget_restart.py [--usd 0.25] [--concurrency 20]

On 127.0.0.1 only: a private Redis (no persistence), the mock upstream and one `trimtab serve`
with a $--usd daily block budget on the tenant and a model priced so that one request costs
a few cents. Burst 1 spends about half the budget; then, in each scenario:

- restart: Redis is SIGKILLed and started again empty at once, unseen by the gateway;
- outage: Redis is SIGKILLed, a burst is served while it is away, then it starts empty.

Burst 2 then comes in waves of --concurrency requests until the budget refuses as spent.
Prints each scenario's settled spend (from the store) against the bound docs/policy.md states
for one process (limit + one request's cost), and one JSON line. Bounded: about 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _harness import ADMIN_KEY, APP_KEY, KEYS, Gateway, table

from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.outage import RestartableRedis

PRICEY = {"input_per_mtok": 5_000.0, "output_per_mtok": 5_000.0}  # ~$0.005 per token
MSGS = [{"role": "user", "content": "how much"}]


def config(upstream: str, redis: str, folder: Path, usd: float) -> dict[str, Any]:
    return {
        "store": {"url": f"sqlite:///{folder}/trimtab.db"},
        "telemetry": {"spill_path": str(folder / "spill.jsonl"), "flush_interval_s": 0.05},
        "providers": {"upstream": {"kind": "openai", "base_url": upstream + "/v1"}},
        "models": {"pricey": {"provider": "upstream", "model": "mock-1", "pricing": PRICEY}},
        "keys": KEYS,
        "state": {"url": redis},
        "budgets": [{"scope": "tenant:acme", "period": "day", "usd": usd, "on_exceed": "block"}],
    }


async def burst(gateway: Gateway, n: int) -> list[str]:
    """n concurrent calls: "ok", "spent" (the budget's settled spend reached its limit),
    "taken" (reservations in flight stand in the way) or another status."""
    async with httpx.AsyncClient(timeout=30) as http:

        async def one() -> str:
            resp = await http.post(
                gateway.url + "/v1/chat/completions",
                json={"model": "pricey", "messages": MSGS, "max_tokens": 10},
                headers={"authorization": f"Bearer {APP_KEY}"},
            )
            if resp.status_code == 200:
                return "ok"
            message = resp.json().get("error", {}).get("message", "")
            if resp.status_code == 429:
                return "spent" if " is spent: " in message else "taken"
            return str(resp.status_code)

        return list(await asyncio.gather(*(one() for _ in range(n))))


def stored(db: Path) -> tuple[int, float, float]:
    """(rows, total cost, largest cost) in the store."""
    with sqlite3.connect(db) as conn:
        rows, total, largest = conn.execute(
            "SELECT count(*), coalesce(sum(cost_usd), 0), coalesce(max(cost_usd), 0) FROM requests"
        ).fetchone()
    return int(rows), float(total), float(largest)


def wait_rows(db: Path, n: int) -> None:
    deadline = time.monotonic() + 15
    while stored(db)[0] < n:
        assert time.monotonic() < deadline, "the store did not get every row"
        time.sleep(0.02)


def scenario(how: str, usd: float, concurrency: int, upstream: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="trimtab-drill-") as tmp:
        folder = Path(tmp)
        db = folder / "trimtab.db"
        redis = RestartableRedis()
        gateway = Gateway(config(upstream, redis.url, folder, usd), folder)
        try:
            sent = 0
            while stored(db)[1] < usd / 2:
                assert asyncio.run(burst(gateway, 1)) == ["ok"]
                sent += 1
                wait_rows(db, sent)
            before = stored(db)[1]
            during: list[str] = []
            if how == "restart":
                redis.kill()
                redis.start()
            else:
                redis.kill()
                during = asyncio.run(burst(gateway, concurrency))
                sent += len(during)
                redis.start()
            outcomes: list[str] = []
            for _ in range(50):
                wave = asyncio.run(burst(gateway, concurrency))
                outcomes += wave
                sent += len(wave)
                if "spent" in wave:
                    break
            wait_rows(db, sent)
            _, total, largest = stored(db)
            budget = httpx.get(
                gateway.url + "/api/budgets",
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
                timeout=30,
            ).json()
        finally:
            gateway.stop()
            redis.stop()
    reported = budget["data"][0]["values"][0]["spent_usd"] if "data" in budget else None
    return {
        "scenario": how,
        "limit_usd": usd,
        "spent_before_usd": round(before, 6),
        "served_during_outage": during.count("ok"),
        "served_after": outcomes.count("ok"),
        "refused_after": len(outcomes) - outcomes.count("ok"),
        "settled_usd": round(total, 6),
        "budget_api_spent_usd": reported,
        "overspend_usd": round(max(total - usd, 0.0), 6),
        "largest_request_usd": round(largest, 6),
        "bound_usd": round(usd + largest, 6),
        "within_bound": total <= usd + largest + 1e-9,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usd", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with MockUpstream() as upstream:
        results = [
            scenario(how, args.usd, args.concurrency, upstream.url) for how in ("restart", "outage")
        ]
    columns = [
        "scenario",
        "limit_usd",
        "spent_before_usd",
        "served_during_outage",
        "served_after",
        "settled_usd",
        "overspend_usd",
        "bound_usd",
        "within_bound",
    ]
    print(table(columns, [[r[c] for c in columns] for r in results]))
    print(json.dumps({"drill": "budget_restart", "results": results}, sort_keys=True))
    return 0 if all(r["within_bound"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
