"""Soak test: one trimtab under sustained mixed load with failures injected all the time.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 200] [--concurrency 64]

On 127.0.0.1 only, it starts the fault-injecting mock upstream and ONE trimtab (keys on,
bodies recorded, SQLite in a temporary directory) whose models cover the failure paths:
a weighted pool with a failing deployment behind a breaker, retries on 503s, a flaky
upstream, hanging and slow-first-token upstreams behind short timeouts with fallbacks,
streams cut mid-way, the response cache and a rate-limited tenant. It then sends requests
at a fixed rate (open loop: request i is due at i / rate seconds, whatever happened to the
earlier ones; at most --concurrency in flight, and a request that has to wait for a slot
is counted as late), samples trimtab every 10 s (RSS, fds, threads, CPU, /metrics),
SIGTERMs it and checks that every request sent has a row in the store.

Results: Markdown on stdout and in bench/results/soak.md, JSON in bench/results/soak.json.
Exit status 0 when memory stayed flat, every request was recorded, every answer was one the
configuration allows and trimtab stopped cleanly; 1 otherwise; 2 when it could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Its parts are modules of bench/soak_bench/: the traffic and the configuration it runs
# (traffic.py), the processes (processes.py), the load (load.py), the sampling, the checks
# after the load (verdicts.py) and the report (report.py); this file is the command.
from soak_bench.processes import (
    MOCK_CODE,
    free_port,
    machine_facts,
    ready,
    stop_process,
    stop_trimtab,
    trimtab_version,
    wait_port,
)
from soak_bench.report import fmt, render
from soak_bench.sampling import soak
from soak_bench.settings import FLAKY_RESET_S, HOST, RESULTS, TRIMTAB, WARMUP_S, SetupError
from soak_bench.traffic import KINDS, config_yaml, trimtab_config
from soak_bench.verdicts import check_rows, log_findings, memory_verdict, outcome_table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the load (10)")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (200)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="most requests in flight (64: the mix's 1 s timeouts keep 10-16 in flight at "
        "200 req/s, so 16 would make the open loop wait)",
    )
    p.add_argument("--sample-s", type=float, default=10.0, help="sampling interval (10)")
    p.add_argument("--seed", type=int, default=1, help="traffic mix seed (1)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.concurrency < 1 or args.sample_s <= 0:
        p.error("--minutes, --rate, --sample-s must be positive and --concurrency at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not TRIMTAB.exists():
        print(f"{TRIMTAB} is missing: install the project first (make run)", file=sys.stderr)
        return 2
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="trimtab-soak-"))
    port, mock_port = free_port(), free_port()
    cfg_path = tmp / "trimtab.yaml"
    cfg_path.write_text(config_yaml(trimtab_config(tmp, port, mock_port)))
    log_path = tmp / "trimtab.log"
    problems: list[str] = []
    res: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(["bench/soak.py", *(sys.argv[1:] if argv is None else argv)]),
            "minutes": args.minutes,
            "rate": args.rate,
            "concurrency": args.concurrency,
            "sample_s": args.sample_s,
            "seed": args.seed,
            "tmpdir": str(tmp),
            "trimtab_version": trimtab_version(),
        },
        "machine": machine_facts(),
        "config": trimtab_config(tmp, port, mock_port),
        "mix": [
            {
                "kind": k.name,
                "share": k.share,
                "model": k.model,
                "what": k.what,
                "wire": k.wire,
                "stream_share": k.stream_share,
                "expect": sorted(k.expect),
            }
            for k in KINDS
        ],
    }
    print(f"soak: temporary directory {tmp}", file=sys.stderr)
    mock = subprocess.Popen(
        [sys.executable, "-c", MOCK_CODE, HOST, str(mock_port), str(FLAKY_RESET_S)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "mock.log").open("wb"),
        cwd=tmp,
    )
    with log_path.open("wb") as log_file:
        trimtab = subprocess.Popen(
            [str(TRIMTAB), "serve", "--config", str(cfg_path), "--log-level", "info"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    base = f"http://{HOST}:{port}"
    try:
        try:
            wait_port(mock_port, mock, 30)
            wait_port(port, trimtab, 60)
            ready(base, 30)
        except SetupError as exc:
            print(f"soak: could not start: {exc}", file=sys.stderr)
            print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 2
        print(
            f"soak: trimtab pid {trimtab.pid} on {base}, mock pid {mock.pid}; "
            f"{args.rate:g} req/s for {args.minutes:g} min",
            file=sys.stderr,
        )
        load, sampler = asyncio.run(soak(base, args, trimtab, mock))
        alive = trimtab.poll() is None
        res["stop"] = stop_trimtab(trimtab, 90)
    finally:
        stop_process(trimtab)
        stop_process(mock)
    samples = sampler.samples
    res["samples"] = samples
    scheduled = int(args.rate * args.minutes * 60)
    res["load"] = {
        "scheduled": scheduled,
        "sent": load.sent,
        "completed": len(load.results),
        "not_sent": load.not_sent,
        "achieved_rps": load.sent / (args.minutes * 60),
        "late": load.late,
        "max_late_ms": round(load.max_late_s * 1000, 1),
        "peak_in_flight": load.peak_in_flight,
        "stopped_early": load.stopped_early,
        "outcomes": dict(load.outcomes.most_common()),
    }
    res["classes"] = outcome_table(load)
    last_metrics = [s["metrics"] for s in samples if "error" not in s["metrics"]]
    res["final_metrics"] = last_metrics[-1] if last_metrics else {}
    res["memory"] = memory_verdict(samples, WARMUP_S)

    def series(key: str) -> dict[str, Any]:
        vals = [s[key] for s in samples if s[key] is not None]
        if not vals:
            return {"first": None, "last": None, "max": None}
        return {"first": vals[0], "last": vals[-1], "max": max(vals)}

    res["fds"], res["threads"], res["mock_rss"] = (
        series("fds"),
        series("threads"),
        series("mock_rss_mib"),
    )
    res["recording"] = check_rows(tmp / "soak.db", tmp / "spill.jsonl", load)
    res["log"] = log_findings(log_path)

    if not alive or load.stopped_early:
        problems.append(f"trimtab did not survive the load: {load.stopped_early or res['stop']}")
    # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM is a clean exit
    clean_stop = (
        res["stop"].get("stopped") == "SIGTERM"
        and res["stop"].get("returncode") in (0, -signal.SIGTERM)
        and res["log"]["shutdown_complete"]
    )
    if not clean_stop:
        problems.append(f"trimtab did not stop cleanly on SIGTERM: {res['stop']}")
    unexpected = sum(sum(r["unexpected"].values()) for r in res["classes"])
    if unexpected:
        problems.append(f"{unexpected} answers the configuration does not allow (see the table)")
    if res["log"]["tracebacks"]:
        problems.append(f"{res['log']['tracebacks']} tracebacks in trimtab's log")
    if load.late > 0.01 * max(load.sent, 1):
        problems.append(
            f"{load.late} requests were sent late (a full --concurrency): not an open loop"
        )
    rec = res["recording"]
    rec_word = "PASS" if rec["ok"] else "**FAIL**"
    res["verdicts"] = {
        "memory": res["memory"]["verdict"],
        "recording": (
            f"{rec_word}: {fmt(rec.get('rows'))} rows for {rec['sent']:,} requests sent, "
            f"{fmt(rec.get('ids_missing'))} answered ids without a row, "
            f"{fmt(rec.get('status_mismatches'))} status mismatches, "
            f"{rec['spill_lines']} records left in the spill file"
        ),
        "answers": (
            "PASS: every answer is one the configuration allows"
            if not unexpected
            else f"**FAIL**: {unexpected} unexpected answers"
        ),
        "lifecycle": (
            f"{'PASS' if alive and clean_stop else '**FAIL**'}: alive through the load: "
            f"{alive}; stop: {res['stop']}; lifespan shutdown completed: "
            f"{res['log']['shutdown_complete']}"
        ),
    }
    res["problems"] = problems
    res["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    md = render(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(md + "\n")
    (args.out / "soak.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(md)
    ok = (
        res["memory"]["pass"] is not False and rec["ok"] and not unexpected and alive and clean_stop
    )
    if args.keep or not ok:
        print(f"\n(kept {tmp}: trimtab.log, trimtab.yaml, soak.db)", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
