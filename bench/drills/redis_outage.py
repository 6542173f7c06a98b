"""Drill: Redis is killed for 10 s under load; does the gateway keep serving?

    .venv/bin/python bench/drills/redis_outage.py [--outage-s 10] [--concurrency 16]

On 127.0.0.1 only: a private Redis (no persistence), the mock upstream and one `trimtab serve`
with Redis as its shared state, a model with a circuit breaker and a response cache, and a
route under rollout (50 % canary). Closed-loop load (half to the model, from 30 prompts so
the cache hits; half to the route, 200 users) runs 5 s with Redis, then Redis is SIGKILLed
for --outage-s seconds and started again empty, then 5 s more once the gateway reports Redis
back. Prints served share and errors by status per phase, the fallbacks /metrics counted,
and one JSON line. Bounded: about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _harness import APP_KEY, KEYS, OPERATOR_KEY, Gateway, table

from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.outage import RestartableRedis

ROUTE_V1 = """
routes:
  faq:
    owner: faq@acme.example
    risk_tier: 0
    version:
      model: {model}
      messages:
        - role: system
          content: "{greeting}. Answer about {{{{topic}}}}."
"""
# stays at its first stage (50 %): the controller never judges it during the drill
PLAN = {
    "stages": [
        {"percent": p, "min_duration_s": 0, "min_canary_requests": 10**6, "max_duration_s": 3600}
        for p in (50, 100)
    ]
}


def config(upstream: str, redis: str, folder: Path) -> dict[str, Any]:
    return {
        "store": {"url": f"sqlite:///{folder}/trimtab.db"},
        "telemetry": {"spill_path": str(folder / "spill.jsonl")},
        "providers": {
            "upstream": {"kind": "openai", "base_url": upstream + "/v1", "api_key": "sk-up"},
            "sim": {"kind": "simulator"},
        },
        "models": {
            "guarded": {
                "provider": "upstream",
                "model": "mock-1",
                "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
                "breaker": {"failure_ratio": 0.5, "min_requests": 20, "window_s": 30},
                "cache": {"ttl_s": 300},
            },
            "sim-1": {"provider": "sim"},
        },
        "keys": KEYS,
        "state": {"url": redis},
        "rollouts": {"check_interval_s": 3600, "plans": {"drill": PLAN}},
    }


class Load:
    """Closed-loop workers; each outcome is counted under the phase current when it started."""

    def __init__(self, gateway: Gateway, concurrency: int) -> None:
        self.gateway = gateway
        self.concurrency = concurrency
        self.phase = "before"
        self.outcomes: dict[str, Counter[str]] = {}
        self.running = True

    async def worker(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        headers = {"authorization": f"Bearer {APP_KEY}"}
        while self.running:
            phase = self.phase
            if rng.random() < 0.5:
                body: dict[str, Any] = {
                    "model": "guarded",
                    "messages": [{"role": "user", "content": f"prompt {rng.randrange(30)}"}],
                }
            else:
                body = {
                    "model": "route:faq",
                    "messages": [{"role": "user", "content": "hi"}],
                    "user": f"user-{rng.randrange(200)}",
                    "variables": {"topic": "returns"},
                }
            try:
                resp = await http.post(
                    self.gateway.url + "/v1/chat/completions", json=body, headers=headers
                )
                outcome = str(resp.status_code)
                if resp.status_code >= 400:
                    try:
                        code = resp.json().get("error", {}).get("code", "?")
                    except ValueError:
                        code = "not-json"
                    outcome += f" {code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            self.outcomes.setdefault(phase, Counter())[outcome] += 1

    async def run(self, redis: RestartableRedis, outage_s: float) -> dict[str, float]:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            workers = [
                asyncio.create_task(self.worker(http, random.Random(i)))
                for i in range(self.concurrency)
            ]
            await asyncio.sleep(5)
            self.phase = "outage"
            killed = time.monotonic()
            await asyncio.to_thread(redis.kill)
            await asyncio.sleep(outage_s)
            self.phase = "recovering"
            await asyncio.to_thread(redis.start)
            started = time.monotonic()
            # a gateway without the gauge (before ResilientState) gets 2 s
            while (await asyncio.to_thread(self.gateway.metrics)).get(
                "trimtab_state_up", 1.0
            ) != 1.0:
                await asyncio.sleep(0.05)
                assert time.monotonic() - started < 30, "the gateway never saw Redis come back"
            if time.monotonic() - started < 2 and "trimtab_state_up" not in (
                await asyncio.to_thread(self.gateway.metrics)
            ):
                await asyncio.sleep(2)
            back = time.monotonic()
            self.phase = "after"
            await asyncio.sleep(5)
            self.running = False
            await asyncio.gather(*workers)
        return {"outage_s": round(started - killed, 2), "back_after_s": round(back - started, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage-s", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trimtab-drill-") as tmp, MockUpstream() as upstream:
        folder = Path(tmp)
        redis = RestartableRedis()
        gateway = Gateway(config(upstream.url, redis.url, folder), folder)
        try:
            for greeting in ("Hello", "Hi"):
                text = ROUTE_V1.format(model="sim-1", greeting=greeting)
                resp = gateway.post("/api/routes/apply", OPERATOR_KEY, yaml=text, message="drill")
                assert resp.status_code == 200, resp.text
            resp = gateway.post(
                "/api/routes/faq/rollouts", OPERATOR_KEY, to="v2", plan="drill", reason="drill"
            )
            assert resp.status_code in (200, 201), resp.text
            load = Load(gateway, args.concurrency)
            timing = asyncio.run(load.run(redis, args.outage_s))
            samples = gateway.metrics()
        finally:
            gateway.stop()
            redis.stop()
        fallbacks = {
            name.split('operation="')[1].rstrip('"}'): int(value)
            for name, value in samples.items()
            if name.startswith("trimtab_state_fallbacks_total{")
        }
    rows = []
    result: dict[str, Any] = {"drill": "redis_outage", **timing, "phases": {}}
    for phase in ("before", "outage", "recovering", "after"):
        counts = load.outcomes.get(phase, Counter())
        total = sum(counts.values())
        ok = counts.get("200", 0)
        errors = {k: v for k, v in counts.items() if k != "200"}
        share = ok / total if total else 0.0
        rows.append(
            [
                phase,
                total,
                ok,
                f"{share:.1%}",
                ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "-",
            ]
        )
        result["phases"][phase] = {
            "requests": total,
            "ok": ok,
            "served": round(share, 4),
            "errors": errors,
        }
    result["fallbacks"] = fallbacks
    print(table(["phase", "requests", "200", "served", "errors"], rows))
    print()
    print(table(["operation served locally", "calls"], sorted(fallbacks.items())))
    print(
        f"\nRedis down {timing['outage_s']} s; the gateway was back on Redis "
        f"{timing['back_after_s']} s after it restarted"
    )
    print(json.dumps(result, sort_keys=True))
    outage = result["phases"]["outage"]
    return 0 if outage["requests"] and outage["served"] == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
