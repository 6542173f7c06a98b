"""The telemetry writer's CPU per record: records pushed through a real Recorder into SQLite.

    .venv/bin/python bench/writer_cost.py [--records 20000] [--rate 1000]
    .venv/bin/python bench/writer_cost.py --compare /tmp/wt_writer/src [--rounds 3]
    .venv/bin/python bench/writer_cost.py --sessions shared


Builds records the way the gateway does (telemetry/record.py; ids from types.new_request_id,
bodies, an attempts attribute, a mix of models, tenants, features and statuses, session
ids), hands them to `Recorder.record` from this thread at `--rate` per second (open loop,
as requests end) with the journal on, as `trimtab serve` runs it, into a migrated SQLite store in a
temporary directory, then stops the recorder (which flushes everything). Reports the
writer thread's CPU time per record (its own clock, `pthread_getcpuclockid`, until the
queue is drained, plus the process CPU time `stop()` takes: the last flush), the whole
process's CPU per record, and the rows and rollup counts the store ends with.

`--sessions` shapes the records' session ids (`session_costs` has a row per tenant, route,
feature and session): `mixed` (the default) sessions of 6 requests, each in another tenant
and feature, so a row per record (the worst case for the writer's upserts); `distinct`
every record its own session; `shared` sessions of 6 requests in one tenant and feature,
so a row per 6 records.

`--compare SRC` runs this script in child processes, alternating this checkout's `src`
and SRC (e.g. a `git worktree` of an older commit) `--rounds` times each, and prints one
line per run and the medians.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

MODELS = ("gpt-mock", "gpt-mock-mini", "claude-mock")
TENANTS = ("acme", "globex")
FEATURES = (None, "search", "chat")


SESSIONS = ("mixed", "distinct", "shared")


def build_records(n: int, sessions: str = "mixed") -> list[Any]:
    """`n` records shaped like the gateway's (exchange.py): a chat call with bodies."""
    from trimtab.telemetry.record import RequestRecord
    from trimtab.types import new_request_id

    out = []
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        # a session's tenant and feature: the request's own, or its session's first's
        j = i // 6 * 6 if sessions == "shared" else i
        status = 502 if i % 97 == 0 else 429 if i % 89 == 0 else 200
        streamed = i % 3 == 0
        request = {
            "model": model,
            "messages": [{"role": "user", "content": f"Summarise ticket {i} in one line."}],
            "stream": streamed,
        }
        response = {
            "id": f"chatcmpl-{i}",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "The printer is on fire."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23},
        }
        record = RequestRecord(
            id=new_request_id(),
            started_at=0.0,  # stamped when pushed
            api="openai",
            operation="chat",
            tenant=TENANTS[j % len(TENANTS)],
            key_id="key_0123456789ab",
            request_model=model,
            response_model=model,
            upstream_model=model,
            provider="upstream",
            provider_kind="openai",
            response_id=f"chatcmpl-{i}",
            user=f"user-{i % 50}",
            # sessions of 6 requests, each request in another rollup row than the last (a
            # worst case for the rows' session sketches: every row sees most sessions)
            session=f"session-{i}" if sessions == "distinct" else f"session-{i // 6}",
            feature=FEATURES[j % len(FEATURES)],
            status_code=status,
            error_type=None if status == 200 else "upstream_error",
            error_message=None if status == 200 else "upstream answered 502",
            duration_ms=20.0 + (i * 7919) % 400 / 10,
            ttft_ms=5.0 + i % 13 if streamed else None,
            overhead_ms=0.4 + i % 5 / 10,
            input_tokens=14,
            output_tokens=9 if status == 200 else None,
            # 211 prices from $0.000011 to $0.000089: about a hundred cost-sketch bins
            cost_usd=1.1e-5 + 3.7e-7 * (i % 211) if status == 200 else None,
            streamed=streamed,
            finish_reasons=["stop"] if status == 200 else None,
            request_body=json.dumps(request),
            response_body=json.dumps(response) if status == 200 else None,
            attributes={
                "attempts": [
                    {
                        "model": model,
                        "deployment": "upstream",
                        "outcome": "ok" if status == 200 else "error",
                        "status": status,
                        "at_ms": 0.21,
                        "duration_ms": 19.5,
                        "error": None,
                    }
                ]
            },
        )
        out.append(record)
    return out


def thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def run_once(n: int, rate: float, sessions: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from trimtab.store.engine import make_engine, migrate
    from trimtab.store.tables import requests, rollups, session_costs
    from trimtab.telemetry.journal import Journal
    from trimtab.telemetry.metrics import GatewayMetrics, LabelValues
    from trimtab.telemetry.recorder import Recorder
    from trimtab.telemetry.spill import SpillFile
    from trimtab.telemetry.store import TelemetryStore

    records = build_records(n, sessions)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/trimtab.db")
        migrate(engine)
        store = TelemetryStore(engine)
        spill = SpillFile(Path(tmp) / "spill.jsonl")
        journal = Journal(Path(tmp) / "spill.journal", fsync_interval_s=0.2, also_sync=spill.sync)
        metrics = GatewayMetrics(LabelValues(MODELS, ("upstream",), TENANTS))
        # the defaults of TelemetryConfig, as `trimtab serve` builds it (app.py)
        options: dict[str, Any] = {
            "capacity": 20_000,
            "batch_size": 1_000,
            "flush_interval_s": 0.2,
            "write_retries": 3,
            "journal": journal,
        }
        recorder = Recorder(store, spill, metrics, **options)
        recorder.start()
        writer = next(t for t in threading.enumerate() if t.name == "trimtab-writer")
        cpu0, proc0, wall0 = thread_cpu(writer), time.process_time(), time.monotonic()
        chunk = max(1, int(rate / 200))  # every 5 ms at the default rate
        for start in range(0, n, chunk):
            due = wall0 + start / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.time()
            for record in records[start : start + chunk]:
                record.started_at = now
                recorder.record(record)
        while recorder.depth():
            time.sleep(0.005)
        time.sleep(0.05)  # the last batch is taken off the queue before it is committed
        writer_s = thread_cpu(writer) - cpu0
        stop0 = time.process_time()
        recorder.stop()
        stop_s = time.process_time() - stop0
        proc_s = time.process_time() - proc0
        wall_s = time.monotonic() - wall0
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(requests)).scalar_one()
            counted = conn.execute(select(func.sum(rollups.c.count))).scalar_one()
            session_rows = conn.execute(
                select(func.count()).select_from(session_costs)
            ).scalar_one()
        engine.dispose()
    return {
        "src": str(Path(inspect.getfile(Recorder)).parents[2]),
        "records": n,
        "rate": rate,
        "sessions": sessions,
        "session_rows": session_rows,
        "writer_us_per_record": (writer_s + stop_s) / n * 1e6,
        "stop_ms": stop_s * 1000,
        "process_us_per_record": proc_s / n * 1e6,
        "wall_s": wall_s,
        "rows": rows,
        "rollup_count": counted,
    }


def compare(other: str, rounds: int, n: int, rate: float, sessions: str) -> None:
    mine = str(ROOT / "src")
    results: dict[str, list[dict[str, Any]]] = {mine: [], other: []}
    for _ in range(rounds):
        for src in (other, mine):
            env = {**os.environ, "PYTHONPATH": src}
            args = [sys.executable, __file__, "--records", str(n), "--rate", str(rate)]
            args += ["--sessions", sessions, "--json"]
            out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
            result = json.loads(out.stdout)
            assert result["src"] == src, (result["src"], src)
            results[src].append(result)
            print(line(result), flush=True)
    for src, runs in results.items():
        med = statistics.median(r["writer_us_per_record"] for r in runs)
        proc = statistics.median(r["process_us_per_record"] for r in runs)
        print(f"median {src}: writer {med:.1f} µs/record, process {proc:.1f} µs/record")


def line(r: dict[str, Any]) -> str:
    return (
        f"{r['src']}: writer {r['writer_us_per_record']:.1f} µs/record "
        f"(stop {r['stop_ms']:.0f} ms), process {r['process_us_per_record']:.1f} µs/record, "
        f"{r['records']} records ({r['sessions']} sessions) at {r['rate']:.0f}/s in "
        f"{r['wall_s']:.1f} s, {r['rows']} rows, rollups count {r['rollup_count']}, "
        f"{r['session_rows']} session rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="records per second")
    parser.add_argument("--compare", metavar="SRC", help="another src/ to run interleaved")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", choices=SESSIONS, default="mixed", help="their shape")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    if args.compare:
        other = str(Path(args.compare).resolve())
        compare(other, args.rounds, args.records, args.rate, args.sessions)
        return
    result = run_once(args.records, args.rate, args.sessions)
    print(json.dumps(result) if args.json else line(result))


if __name__ == "__main__":
    main()
