"""trimtab's benchmark: added latency, throughput, TTFT, memory and recording, side by side.

One run starts a fast mock OpenAI upstream (bench/mock_upstream.py), trimtab (one process,
state in process), trimtab-w2 (`trimtab serve --workers 2`, state in a Redis the run starts)
and LiteLLM's proxy in front of the same mock, drives each with wrk (non-streaming) and an
aiohttp client (streaming TTFT), and reports, for every target at the same concurrency in the
same run, the latency that the gateway ADDS over calling the mock directly, and the CPU time
it spends per request next to the mock's.

    .venv/bin/python bench/run.py            # full run, ~10 s per measurement, ~3 minutes
    .venv/bin/python bench/run.py --quick    # smoke run, ~1 minute

Results: a Markdown table on stdout and in bench/results/latest.md, everything in
bench/results/latest.json, process logs in bench/results/logs/. See bench/README.md.

Its parts are modules of bench/gateway_bench/: the servers it starts (servers.py), the
load generators (wrk.py, ttft.py), the checks before measuring (checks.py), the phases
(phases.py), the recording check (recording.py), the report and the goals (report.py,
goals.py); this file is the command.

All traffic stays on 127.0.0.1. Exit status: 0 = ran (targets met or not), 1 = a hard failure
(a target errored, answered wrongly, or trimtab did not record every request), 2 = setup
problem (missing wrk or redis-server, LiteLLM install failed), 3 = --strict and a target was
missed.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # loaded by path (tests/bench, bench/guardrails_*.py)
    sys.path.insert(0, str(BENCH_DIR))

from gateway_bench.goals import cpu_ratio, evaluate  # noqa: E402
from gateway_bench.machine import machine_facts  # noqa: E402
from gateway_bench.options import parse_args  # noqa: E402
from gateway_bench.payload import PAYLOAD, SHORT_PROMPT, Payload, prompt_text  # noqa: E402
from gateway_bench.phases import compute_added, phase_load, phase_start, phase_ttft  # noqa: E402
from gateway_bench.processes import mem_mib, stop_process, wait_http_ok, wait_quiet, worker_pids  # noqa: E402
from gateway_bench.recording import phase_recording, recording_verdict, spill_files  # noqa: E402
from gateway_bench.report import render_markdown, setup_notes  # noqa: E402
from gateway_bench.run_state import Run, managed  # noqa: E402
from gateway_bench.servers import ensure_litellm, start_mock, start_trimtab, trimtab_config  # noqa: E402
from gateway_bench.settings import (  # noqa: E402
    CONCURRENCIES,
    CPU_LOAD,
    CPU_TARGET,
    FOREIGN_CPU_WARN_PCT,
    LITELLM_VENV,
    MODEL,
    TRIMTAB_BIN,
    W2,
    SetupError,
    is_trimtab,
    loud,
)
from gateway_bench.wire import headers_for  # noqa: E402

# what tests/bench/test_run.py and bench/guardrails_*.py use of this script
__all__ = [
    "CPU_LOAD",
    "CPU_TARGET",
    "MODEL",
    "SHORT_PROMPT",
    "TRIMTAB_BIN",
    "W2",
    "Payload",
    "cpu_ratio",
    "evaluate",
    "headers_for",
    "main",
    "prompt_text",
    "recording_verdict",
    "render_markdown",
    "spill_files",
    "start_mock",
    "start_trimtab",
    "stop_process",
    "trimtab_config",
    "wait_http_ok",
    "worker_pids",
]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    PAYLOAD.prompt = prompt_text(args.prompt_bytes)
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk\n"
            "(then re-run: make bench)",
            file=sys.stderr,
        )
        return 2
    if any(is_trimtab(n) for n in args.targets) and not Path(args.trimtab_bin).exists():
        loud(f"{args.trimtab_bin} is missing: install the project first (pip install -e .)")
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    split = args.pin == "split" and len(cpus) >= 2 and shutil.which("taskset")
    cpu_load = CPU_LOAD if split else None
    cpu_target = CPU_TARGET if split else None
    all_cpus = ",".join(map(str, cpus)) if split else None
    pinning = (
        f"taskset: wrk, mock upstream and the TTFT client on CPU {CPU_LOAD}; "
        f"the gateway under test on CPU {CPU_TARGET}"
        + (
            f", except {W2} (supervisor and workers) and its redis-server, on CPUs {all_cpus}"
            if W2 in args.targets
            else ""
        )
        if split
        else "none (the kernel schedules everything on both cores)"
    )
    setup = setup_notes(args.targets, all_cpus, args.guardrails)
    if split:
        os.sched_setaffinity(0, {CPU_LOAD})  # this process runs the streaming client

    litellm_exe: Path | None = None
    if "litellm" in args.targets:
        try:
            litellm_exe = ensure_litellm(args.litellm_spec, logs)
        except SetupError as e:
            loud(str(e))
            return 2

    if args.wait_quiet > 0:
        busy = wait_quiet(args.wait_quiet, {"bench": os.getpid()})
        if busy >= FOREIGN_CPU_WARN_PCT:
            loud(f"the machine is busy ({busy:.0f}% of a core in use); results will be disturbed")
    t_start = time.monotonic()
    t_wall = time.time()
    tmpdir = Path(tempfile.mkdtemp(prefix="trimtab-bench-"))
    if not args.keep:  # also on Ctrl-C or an unexpected error
        atexit.register(shutil.rmtree, tmpdir, True)
    res: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "ttft_duration_s": args.ttft_duration,
            "concurrencies": list(CONCURRENCIES),
            "pinning": pinning,
            "stream_gap_ms": args.stream_gap_ms,
            "slow_gap_ms": args.slow_gap_ms,
            "prompt_bytes": len(PAYLOAD.prompt.encode()),
            "reply_bytes": args.reply_bytes,
            "guardrails": args.guardrails,
            "spin": args.spin,
            "tmpdir": str(tmpdir),
            "setup": setup,
        },
        "machine": machine_facts(LITELLM_VENV / "bin" / "python" if litellm_exe else None),
        "targets": {},
        "added": {},
    }
    run = Run(args, res, tmpdir, cpu_load, cpu_target, all_cpus=all_cpus)
    run.retry_deadline = time.monotonic() + args.retry_budget
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with managed(procs):
            phase_start(run, litellm_exe, procs)
            phase_load(run)
            phase_ttft(run)
            for t in run.live:
                if t.pid is not None:
                    res["targets"][t.name].setdefault("memory", {})["after"] = mem_mib(t.pid)
            compute_added(run)
            phase_recording(run)
    except SetupError as e:
        loud(str(e))
        return 2
    finally:  # after the gateways: a worker's stop may still release budget reservations
        if run.redis is not None:
            run.redis.stop()
    if run.mock_proc is not None and run.mock_proc.stdout is not None:
        with contextlib.suppress(ValueError, IndexError, OSError):
            last = run.mock_proc.stdout.read().decode().strip().splitlines()[-1]
            res.setdefault("mock", {})["final_stats"] = json.loads(last)

    res["criteria"] = evaluate(res)
    res["problems"] = run.problems
    res["meta"]["elapsed_s"] = round(time.monotonic() - t_start, 1)
    md = render_markdown(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(md + "\n")
    (args.out / "latest.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    # every run also kept under its UTC start time, so runs can be compared later
    dated = args.out / "runs" / time.strftime("%Y-%m-%dT%H%MZ", time.gmtime(t_wall))
    dated.parent.mkdir(exist_ok=True)
    dated.with_suffix(".md").write_text(md + "\n")
    dated.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print()
    print(md)
    print(
        f"(written {args.out / 'latest.md'}, latest.json and {dated}.md/.json; "
        f"{res['meta']['elapsed_s']} s)"
    )
    if args.keep:
        print(f"(kept {tmpdir})")
    if run.hard_fail:
        loud("BENCHMARK HAD HARD FAILURES: see 'Problems' above")
        return 1
    if args.strict and any(c["pass"] is False for c in res["criteria"]):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
