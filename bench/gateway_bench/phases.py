"""The phases of a run: start and check every target, the wrk load, the TTFT streams,
the added latency over the direct mock."""

from __future__ import annotations

import asyncio
import os
import shlex
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from gateway_bench.checks import learn_answer, smoke, stream_check
from gateway_bench.processes import (
    CpuProbe,
    Target,
    mem_mib,
    tail,
    wait_http_ok,
    wait_quiet,
    worker_pids,
)
from gateway_bench.run_state import Run
from gateway_bench.servers import (
    start_litellm,
    start_mock,
    start_redis,
    start_spinners,
    start_trimtab,
)
from gateway_bench.settings import (
    CONCURRENCIES,
    FOREIGN_CPU_WARN_PCT,
    HOST,
    LABELS,
    STREAM_CHECK_TRIES,
    TARGET_ORDER,
    W2,
    W2_WORKERS,
    SetupError,
    TargetError,
    is_trimtab,
    log,
)
from gateway_bench.ttft import StreamSamples, pctl, ttft_phase
from gateway_bench.wrk import WrkRun, per_request_us, run_wrk, wrk_cmd


def phase_start(run: Run, litellm_exe: Path | None, procs: list[subprocess.Popen[bytes]]) -> None:
    """Start the mock, LiteLLM and trimtab; wait for readiness; smoke-test each target."""
    if run.args.spin:
        spinners = start_spinners(range(os.cpu_count() or 1))
        procs.extend(spinners)
        run.spinners = [p.pid for p in spinners]
        log(f"SCHED_IDLE spinners on every CPU (pids {run.spinners})")
    mock_proc, mock_port = start_mock(
        run.cpu_load,
        run.args.stream_gap_ms,
        run.args.slow_gap_ms,
        run.args.reply_bytes,
        logs=run.logs,
    )
    procs.append(mock_proc)
    run.mock_proc = mock_proc
    log(f"mock upstream on :{mock_port} (pid {mock_proc.pid})")
    direct = Target("direct", f"http://{HOST}:{mock_port}/v1", None, "mock-1")
    run.targets.append(direct)
    if run.args.reply_bytes > 0:
        learn_answer(direct)
    if litellm_exe is not None:  # start first: it is the slow one to boot
        lt = start_litellm(litellm_exe, run.tmpdir, mock_port, run.cpu_target, run.logs)
        assert lt.proc is not None
        procs.append(lt.proc)
        run.targets.append(lt)
        log(f"LiteLLM starting (pid {lt.proc.pid}): {shlex.join(lt.cmd)}")
    if "trimtab" in run.args.targets:
        tt = start_trimtab(
            run.args.trimtab_bin,
            run.tmpdir,
            mock_port,
            run.cpu_target,
            not run.args.no_journal,
            guardrails=run.args.guardrails,
            logs=run.logs,
        )
        assert tt.proc is not None
        procs.append(tt.proc)
        run.targets.append(tt)
        log(f"trimtab starting (pid {tt.proc.pid}): {shlex.join(tt.cmd)}")
    if W2 in run.args.targets:
        run.redis = start_redis(run.all_cpus)
        run.res["redis"] = {"url": run.redis.url, "pid": run.redis.pid, "cpus": run.all_cpus}
        log(f"redis-server on :{run.redis.port} (pid {run.redis.pid}) for {W2}'s state")
        w2 = start_trimtab(
            run.args.trimtab_bin,
            run.tmpdir,
            mock_port,
            run.all_cpus,
            not run.args.no_journal,
            name=W2,
            workers=W2_WORKERS,
            state_url=run.redis.url,
            guardrails=run.args.guardrails,
            logs=run.logs,
        )
        assert w2.proc is not None
        procs.append(w2.proc)
        run.targets.append(w2)
        log(f"{W2} starting (supervisor pid {w2.proc.pid}): {shlex.join(w2.cmd)}")
    run.targets.sort(key=lambda t: TARGET_ORDER.index(t.name))

    ready_paths = {"trimtab": "/healthz", W2: "/healthz", "litellm": "/health/liveliness"}
    for t in run.targets:
        entry: dict[str, Any] = {"label": LABELS[t.name], "cmd": shlex.join(t.cmd)}
        run.res["targets"][t.name] = entry
        try:
            if t.name in ready_paths:
                root = t.base_url.removesuffix("/v1")
                waited = wait_http_ok(
                    root + ready_paths[t.name], t.proc, run.args.startup_timeout, LABELS[t.name]
                )
                entry["ready_s"] = round(waited, 2)
                entry["memory"] = {"idle": mem_mib(t.pid)}  # before any request
            entry["smoke"] = smoke(t)
            # a stream that lands on a worker no request has warmed yet, or on a busy
            # machine, can start late once: up to three tries (a buffering gateway fails all)
            for attempt in range(1, STREAM_CHECK_TRIES + 1):
                held = 1 if run.args.guardrails and is_trimtab(t.name) else 0
                chk = stream_check(t, run.args.slow_gap_ms, held)
                chk["attempts"] = attempt
                if chk["incremental"]:
                    break
            entry["stream_check"] = chk
            log(
                f"{t.name}: ready and answering correctly; chunk-by-chunk streaming: "
                f"{'yes' if chk['incremental'] else 'NO'} (first chunk after "
                f"{chk['ttft_ms']:.1f} ms, stream done after {chk['total_ms']:.1f} ms)"
            )
            if not chk["incremental"]:
                run.problem(
                    f"{t.name} does not forward SSE chunks as they arrive: first content after "
                    f"{chk['ttft_ms']:.1f} ms, last after {chk['total_ms']:.1f} ms, with the "
                    f"upstream sending one every {run.args.slow_gap_ms:g} ms",
                    hard=is_trimtab(t.name),
                )
        except (TargetError, OSError, ValueError, KeyError) as e:
            t.ok = False
            t.error = str(e)
            entry["error"] = t.error
            entry["log_tail"] = tail(t.log_path)
            print(f"--- {t.name} log tail ({t.log_path}) ---\n{entry['log_tail']}\n---")
            run.problem(f"{t.name} failed its start/smoke check: {e}", hard=True)
        if t.name == W2 and t.ok and t.pid is not None:
            entry["workers"] = worker_pids(t.pid)
            if len(entry["workers"]) != W2_WORKERS:
                run.problem(
                    f"{W2}: {len(entry['workers'])} worker processes under the supervisor, "
                    f"not {W2_WORKERS}",
                    hard=True,
                )
    if not run.targets[0].ok:
        raise SetupError("the mock upstream itself answered wrongly; giving up")


def report_errors(run: Run, t: Target, conns: int, r: WrkRun, what: str) -> None:
    if r.errors:
        run.problem(
            f"{t.name} @{conns} ({what}): socket/status errors {r.data['errors']}, "
            f"{r.data['bad']} wrong responses; first: {r.data['bad_sample']!r}",
            hard=is_trimtab(t.name),
        )


def measure(run: Run, t: Target, conns: int) -> tuple[WrkRun, int, int]:
    """Warm up, then measure; if other processes disturbed it, wait for quiet and redo.

    Returns the least disturbed attempt, the number of attempts and the error count over
    all of them (warm-ups included)."""
    args = run.args
    best: WrkRun | None = None
    errors = 0
    attempts = 0
    for attempt in range(1 + args.retries):
        if attempt and not run.may_retry():
            log("    (retry budget spent: keeping the disturbed measurement)")
            break
        if attempt:
            log(f"    disturbed by other processes; waiting for quiet, then again ({attempt + 1})")
            wait_quiet(30, run.watch(None))
        watch = run.watch(t)
        if args.warmup > 0:
            w = run_wrk(t, conns, args.warmup, run.cpu_load, watch)
            errors += w.errors
            report_errors(run, t, conns, w, "warm-up")
        log(f"wrk: {t.name} @{conns} for {args.duration:g} s")
        r = run_wrk(t, conns, args.duration, run.cpu_load, watch)
        attempts += 1
        errors += r.errors
        report_errors(run, t, conns, r, "measurement")
        log(
            f"    {r.rps:,.0f} rps, p50 {r.pct_ms('50'):.3f} ms, p99 {r.pct_ms('99'):.3f} ms; "
            f"CPU% target {r.cpu.get('target')}, mock {r.cpu.get('mock')}, "
            f"wrk {r.cpu.get('wrk')}, other processes {r.cpu.get('foreign')}"
            + (
                f"; workers {[v for k, v in sorted(r.cpu.items()) if k.startswith('worker')]}, "
                f"redis {r.cpu.get('redis')}"
                if t.name == W2
                else ""
            )
        )
        if best is None or r.cpu["foreign"] < best.cpu["foreign"]:
            best = r
        if r.cpu["foreign"] <= FOREIGN_CPU_WARN_PCT or r.errors:
            break
    assert best is not None
    return best, attempts, errors


def phase_load(run: Run) -> None:
    """wrk at each concurrency over every live target, direct first."""
    assert run.mock_proc is not None
    args = run.args
    for conns in CONCURRENCIES:
        for t in run.live:
            try:
                r, attempts, errors = measure(run, t, conns)
            except TargetError as e:
                t.ok = False
                run.problem(f"{t.name}: wrk failed @{conns}: {e}", hard=True)
                continue
            entry = run.res["targets"][t.name]
            ov = r.data["overhead_header"]
            entry.setdefault("load", {})[f"c{conns}"] = {
                "connections": conns,
                "rps": round(r.rps, 1),
                "p50_ms": r.pct_ms("50"),
                "p75_ms": r.pct_ms("75"),
                "p90_ms": r.pct_ms("90"),
                "p99_ms": r.pct_ms("99"),
                "p999_ms": r.pct_ms("99.9"),
                "max_ms": r.data["latency_us"]["max"] / 1000,
                "mean_ms": round(
                    (r.data["raw_latency_us"] or r.data["latency_us"])["mean"] / 1000, 4
                ),
                "latency_kind": "raw" if r.raw else "wrk-corrected",
                "wrk_corrected": {
                    "p50_ms": r.corrected_pct_ms("50"),
                    "p99_ms": r.corrected_pct_ms("99"),
                    "p999_ms": r.corrected_pct_ms("99.9"),
                    "mean_ms": round(r.data["latency_us"]["mean"] / 1000, 4),
                    "interval_us": (r.data["raw_latency_us"] or {}).get("interval_us"),
                },
                "requests": r.data["requests"],
                "sent": r.data["sent"],
                "errors": r.data["errors"],
                "bad_responses": r.data["bad"],
                "bad_sample": r.data["bad_sample"],
                "cpu_target_pct": r.cpu.get("target") if t.pid else None,
                "cpu_mock_pct": r.cpu.get("mock"),
                "cpu_wrk_pct": r.cpu.get("wrk"),
                "cpu_pct": r.cpu,
                # CPU time per request, over the same requests: the mock answers every
                # request the gateway forwards, so the ratio is the gateway's cost in units
                # of the upstream's (issue 11's first goal)
                "cpu_target_us_per_request": per_request_us(r.cpu.get("target"), r.rps)
                if t.pid
                else None,
                "cpu_mock_us_per_request": per_request_us(r.cpu.get("mock"), r.rps),
                "steal_pct": r.cpu.get("steal"),
                "self_reported_overhead_ms": (
                    {"mean": round(ov["sum_ms"] / ov["n"], 4), "max": ov["max_ms"], "n": ov["n"]}
                    if ov["n"]
                    else None
                ),
                "wrk": shlex.join(wrk_cmd(t, conns, args.duration, run.cpu_load)),
            }
            row = entry["load"][f"c{conns}"]
            row["attempts"] = attempts
            row["cpu_gateway_us_per_request"] = row["cpu_target_us_per_request"]
            if t.name == W2:  # its state's cost is the gateway's: Redis counts too
                redis_pct = r.cpu.get("redis")
                row["cpu_redis_pct"] = redis_pct
                row["cpu_redis_us_per_request"] = per_request_us(redis_pct, r.rps)
                row["cpu_gateway_us_per_request"] = per_request_us(
                    (r.cpu.get("target") or 0.0) + (redis_pct or 0.0), r.rps
                )
                row["cpu_workers_pct"] = [
                    v for k, v in sorted(r.cpu.items()) if k.startswith("worker")
                ]
            entry["load_errors"] = entry.get("load_errors", 0) + errors
            run.check_quiet(f"{t.name} @{conns}", r.cpu)
            if not r.raw:
                run.problem(
                    f"{t.name} @{conns}: raw latencies unavailable ({r.data['raw_note']}); "
                    "reporting wrk's coordinated-omission-corrected percentiles instead",
                    hard=False,
                )
            time.sleep(0.5)
    mock_c16 = run.res["targets"]["direct"].get("load", {}).get("c16")
    run.res["mock"] = {"capacity_rps": mock_c16["rps"] if mock_c16 else None}


def phase_ttft(run: Run) -> None:
    live = run.live
    log(
        f"TTFT: {len(live)} targets round-robin, one stream at a time, {run.args.ttft_duration:g} s"
    )
    best: tuple[dict[str, StreamSamples], dict[str, float]] | None = None
    for attempt in range(1 + run.args.retries):
        if attempt and not run.may_retry():
            log("    (retry budget spent: keeping the disturbed measurement)")
            break
        if attempt:
            log(f"    disturbed by other processes; waiting for quiet, then again ({attempt + 1})")
            wait_quiet(30, run.watch(None))
        probe = CpuProbe(run.watch(None))
        got = asyncio.run(ttft_phase(live, run.args.ttft_duration, warmup=5))
        cpu = probe.stop()
        if any(s.bad for s in got.values()):  # never hide a wrong answer behind a retry
            best = (got, cpu)
            break
        if best is None or cpu["foreign"] < best[1]["foreign"]:
            best = (got, cpu)
        if cpu["foreign"] <= FOREIGN_CPU_WARN_PCT:
            break
    assert best is not None
    samples, cpu = best
    run.res["ttft_cpu_pct"] = cpu
    run.check_quiet("the TTFT phase", cpu)
    for t in live:
        s = samples[t.name]
        run.res["targets"][t.name]["ttft"] = {
            "n": len(s.ttft_ms),
            "bad": s.bad,
            "bad_sample": s.bad_sample,
            "p50_ms": round(pctl(s.ttft_ms, 50), 4),
            "p90_ms": round(pctl(s.ttft_ms, 90), 4),
            "p99_ms": round(pctl(s.ttft_ms, 99), 4),
            "max_ms": round(max(s.ttft_ms), 4) if s.ttft_ms else None,
            "mean_ms": round(statistics.fmean(s.ttft_ms), 4) if s.ttft_ms else None,
            "total_p50_ms": round(pctl(s.total_ms, 50), 4),
            "self_reported_overhead_p50_ms": (
                round(pctl(s.overhead_ms, 50), 4) if s.overhead_ms else None
            ),
            "samples_ms": [round(x, 4) for x in s.ttft_ms],
        }
        log(
            f"    {t.name}: TTFT p50 {pctl(s.ttft_ms, 50):.3f} ms, p99 {pctl(s.ttft_ms, 99):.3f} "
            f"ms over {len(s.ttft_ms)} streams"
        )
        if s.bad:
            run.problem(
                f"{t.name}: {s.bad} bad streams; first: {s.bad_sample}", hard=is_trimtab(t.name)
            )


def compute_added(run: Run) -> None:
    """Added latency = target minus direct, same concurrency, same run."""
    d = run.res["targets"]["direct"]
    for t in run.targets:
        if t.name == "direct":
            continue
        e = run.res["targets"][t.name]
        a: dict[str, float] = {}
        for c in CONCURRENCIES:
            tl, dl = e.get("load", {}).get(f"c{c}"), d.get("load", {}).get(f"c{c}")
            if tl and dl:
                a[f"c{c}_p50_ms"] = round(tl["p50_ms"] - dl["p50_ms"], 4)
                a[f"c{c}_p99_ms"] = round(tl["p99_ms"] - dl["p99_ms"], 4)
        if "ttft" in e and "ttft" in d:
            a["ttft_p50_ms"] = round(e["ttft"]["p50_ms"] - d["ttft"]["p50_ms"], 4)
            a["ttft_p99_ms"] = round(e["ttft"]["p99_ms"] - d["ttft"]["p99_ms"], 4)
        if a:
            run.res["added"][t.name] = a
