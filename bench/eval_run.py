"""An eval run of 1,000 items end to end through the gateway, against the same calls bare.

    .venv/bin/python bench/eval_run.py [--items 1000] [--concurrency 32] [--rounds 2]

Serves trimtab in this process on a loopback socket (`create_app` + `ServerThread`: a
`simulator` provider answering after `--latency-ms`, SQLite in a temp dir, an admin key),
pushes an `--items` dataset with the CLI (`trimtab datasets push`), and then, `--rounds`
times, interleaved:

- bare: the same request bodies the runner sends, straight to the server's
  `/v1/chat/completions` with httpx at `--concurrency` (no eval machinery);
- eval: `trimtab eval run SUITE -f evals.yaml --concurrency N --no-cache --json` through
  typer's CliRunner, as a user types it: the run is created on the server, every item is
  called, scored by two cheap scorers (`contains` and `length`) and recorded.

overhead per item = (eval wall time - bare wall time) / items. The time in the scorers is
the time spent in `evals.scoring.score_all` (the runner's one call per answer, wrapped
here with a timer). The app is wrapped in a counter of the HTTP requests it serves (by
method and path), printed for each phase, so what the eval machinery adds per item shows
as requests. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from typer.testing import CliRunner

import trimtab.evals.runner as runner_module
from trimtab.app import create_app
from trimtab.cli import cli
from trimtab.config import parse_config
from trimtab.evals import scoring
from trimtab.evals.datasets import Item
from trimtab.evals.scorers import Answer, Scorer
from trimtab.testing.serving import ServerThread

ADMIN = "bench-admin-key-0001"
MODEL = "sim-model"
SUITE = """\
evals:
  bench-run:
    model: sim-model
    dataset: bench-items
    scorers:
      - {name: says_the, kind: contains, threshold: 1}
      - {name: short, kind: length, max: 300}
"""


def config(url: str, folder: Path, latency_ms: float) -> dict[str, Any]:
    return {
        "store": {"url": url},
        "telemetry": {"spill_path": str(folder / "spill.jsonl")},
        "providers": {"sim": {"kind": "simulator", "latency_ms": latency_ms}},
        "models": {MODEL: {"provider": "sim"}},
        "keys": [{"key": ADMIN, "tenant": "acme", "role": "admin", "owner": "bench@admin"}],
    }


def dataset(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i:05d}",
            "messages": [{"role": "user", "content": f"question {i}: how long does it take?"}],
            "expected": ["the", "answer"],
        }
        for i in range(n)
    ]


class Counted:
    """The app, counting the HTTP requests it serves by method and first two path parts."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            parts = scope["path"].strip("/").split("/")
            self.counts[f"{scope['method']} /{'/'.join(parts[:2])}"] += 1
        await self.app(scope, receive, send)

    def taken(self) -> Counter[str]:
        out, self.counts = self.counts, Counter()
        return out


class ScoringTimer:
    """Wraps the runner's `score_all` (the real one) and adds up the time spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._real = scoring.score_all

    def __call__(
        self, scorers: Mapping[str, Scorer], item: Item, answer: Answer
    ) -> dict[str, dict[str, Any]]:
        start = time.perf_counter()
        try:
            return self._real(scorers, item, answer)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


async def bare(base: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, int]:
    """Wall time of the calls at `concurrency` in flight, and how many answered 200."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    ok = 0
    headers = {"authorization": f"Bearer {ADMIN}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def worker() -> None:
            nonlocal ok
            while not queue.empty():
                body = queue.get_nowait()
                resp = await client.post("/v1/chat/completions", content=orjson.dumps(body))
                if resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"]:
                    ok += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, ok


def cli_call(args: list[str], base: str) -> str:
    env = {"TRIMTAB_URL": base, "TRIMTAB_API_KEY": ADMIN}
    result = CliRunner().invoke(cli, args, env=env)
    if result.exit_code != 0:
        raise SystemExit(f"trimtab {' '.join(args)} exited {result.exit_code}:\n{result.output}")
    return result.stdout


def eval_once(base: str, suite_file: Path, concurrency: int, timer: ScoringTimer) -> dict[str, Any]:
    seconds, calls = timer.seconds, timer.calls
    start = time.perf_counter()
    out = cli_call(
        ["eval", "run", "bench-run", "-f", str(suite_file), "--concurrency", str(concurrency),
         "--no-cache", "--json"],
        base,
    )  # fmt: skip
    wall = time.perf_counter() - start
    doc = orjson.loads(out)
    return {
        "wall": wall,
        "scoring": timer.seconds - seconds,
        "scored": timer.calls - calls,
        "doc": doc,
    }


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def table(rows: list[dict[str, Any]], items: int) -> str:
    lines = [
        "| round | bare calls (s) | bare items/s | eval run (s) | eval items/s "
        "| overhead / item (ms) | in the scorers (ms) | scorers / item (µs) | load 1/5 min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        over = (r["eval"] - r["bare"]) / items * 1000
        lines.append(
            f"| {r['round']} | {r['bare']:.2f} | {items / r['bare']:.0f} | {r['eval']:.2f} "
            f"| {items / r['eval']:.0f} | {over:.2f} | {r['scoring'] * 1000:.1f} "
            f"| {r['scoring'] / items * 1e6:.1f} | {r['load']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the simulator's")
    args = parser.parse_args()
    timer = ScoringTimer()
    vars(runner_module)["score_all"] = timer  # the runner calls it once per answer
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}"
        app = Counted(create_app(parse_config(config(url, folder, args.latency_ms), "bench")))
        server = ServerThread(app).start()
        try:
            items = dataset(args.items)
            data = folder / "items.jsonl"
            data.write_bytes(b"".join(orjson.dumps(i) + b"\n" for i in items))
            suite_file = folder / "evals.yaml"
            suite_file.write_text(SUITE)
            print(cli_call(["datasets", "push", "bench-items", "-f", str(data), "-m", "bench"],
                           server.url).strip())  # fmt: skip
            bodies = [{"model": MODEL, "messages": i["messages"]} for i in items]
            _, ok = asyncio.run(bare(server.url, bodies[:64], args.concurrency))
            assert ok == 64, f"warm-up: {ok}/64 answered"
            rows: list[dict[str, Any]] = []
            for n in range(1, args.rounds + 1):
                app.taken()
                wall, ok = asyncio.run(bare(server.url, bodies, args.concurrency))
                assert ok == args.items, f"bare: {ok}/{args.items} answered"
                print(f"round {n}, bare: requests served {dict(app.taken())}")
                run = eval_once(server.url, suite_file, args.concurrency, timer)
                print(f"round {n}, eval: requests served {dict(app.taken())}")
                doc = run["doc"]
                print(f"round {n}: {doc['id']} {doc['status']}, {doc['done']}/{doc['items']} "
                      f"items, {doc['errors']} errors, {doc['cached']} from the cache")  # fmt: skip
                assert doc["done"] == args.items and doc["errors"] == doc["cached"] == 0, doc
                assert run["scored"] == args.items, f"scored {run['scored']}/{args.items}"
                rows.append({"round": n, "bare": wall, "eval": run["wall"],
                             "scoring": run["scoring"], "load": load()})  # fmt: skip
        finally:
            server.stop()
    print()
    print(f"{args.items:,} items, concurrency {args.concurrency}, simulator latency "
          f"{args.latency_ms:g} ms; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"started {started:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print()
    print(table(rows, args.items))


if __name__ == "__main__":
    main()
