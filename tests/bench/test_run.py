"""bench/run.py's helpers: the trimtab configurations it runs, the recording verdict, the
goals it judges a run against, the report's columns, and how it finds a supervisor's
workers."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trimtab.cli.workers import worker_problem
from trimtab.config import load_config
from trimtab.guardrails import injection
from trimtab.guardrails.pii import detect

RUN_PY = Path(__file__).resolve().parents[2] / "bench" / "run.py"
MOCK_PY = RUN_PY.with_name("mock_upstream.py")


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _module(RUN_PY, "bench_run")
bench_mock = _module(MOCK_PY, "bench_mock_upstream")


def test_one_process_keeps_state_in_process_and_two_workers_share_redis(
    tmp_path: Path,
) -> None:
    one = tmp_path / "one.yaml"
    one.write_text(bench.trimtab_config(tmp_path, 9))
    cfg = load_config(one)
    assert cfg.state.url is None
    assert cfg.limits and cfg.budgets  # the configuration users run
    assert worker_problem(cfg, 1) is None
    assert worker_problem(cfg, 2) is not None  # why trimtab-w2 needs Redis

    two = tmp_path / "two.yaml"
    two.write_text(bench.trimtab_config(tmp_path, 9, True, "redis://127.0.0.1:6390/0", 2))
    cfg2 = load_config(two)
    assert cfg2.state.url == "redis://127.0.0.1:6390/0"
    assert cfg2.state.processes == 2
    assert worker_problem(cfg2, 2) is None
    # the same configuration otherwise
    assert cfg2.model_dump(exclude={"state"}) == cfg.model_dump(exclude={"state"})


def test_guardrails_add_the_gateway_policy_and_nothing_else(tmp_path: Path) -> None:
    plain, guarded = tmp_path / "plain.yaml", tmp_path / "guarded.yaml"
    plain.write_text(bench.trimtab_config(tmp_path, 9))
    guarded.write_text(bench.trimtab_config(tmp_path, 9, guardrails=True))
    cfg, cfg_g = load_config(plain), load_config(guarded)
    assert cfg.guardrails.input is None and cfg.guardrails.output is None
    assert cfg_g.guardrails is not None and cfg_g.guardrails.mode == "enforce"
    assert cfg_g.guardrails.input is not None and cfg_g.guardrails.input.pii is not None
    assert cfg_g.guardrails.output is not None and cfg_g.guardrails.output.pii is not None
    assert cfg_g.model_dump(exclude={"guardrails"}) == cfg.model_dump(exclude={"guardrails"})


def test_recording_verdict() -> None:
    assert bench.recording_verdict(100, 98, 100, None).startswith("PASS: every request sent")
    cut = bench.recording_verdict(100, 98, 99, None)
    assert cut.startswith("PASS") and "(1 that wrk cut off" in cut
    assert bench.recording_verdict(100, 98, 97, None).startswith("**FAIL**: 97 rows")
    assert bench.recording_verdict(100, 98, 101, None).startswith("**FAIL**: 101 rows")
    missing = bench.recording_verdict(100, 98, None, "no such table")
    assert missing.startswith("**FAIL**") and "no such table" in missing


def test_spill_files_are_the_process_and_each_worker(tmp_path: Path) -> None:
    for name in ("spill.jsonl", "spill-w0.jsonl", "spill-w1.jsonl", "other.jsonl"):
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "spill.journal").mkdir()
    assert [p.name for p in bench.spill_files(tmp_path)] == [
        "spill-w0.jsonl",
        "spill-w1.jsonl",
        "spill.jsonl",
    ]


def test_cpu_ratio_counts_redis_for_the_workers() -> None:
    row = {"cpu_target_us_per_request": 300.0, "cpu_mock_us_per_request": 100.0}
    assert bench.cpu_ratio(row) == pytest.approx(3.0)
    w2 = {**row, "cpu_gateway_us_per_request": 450.0}
    assert bench.cpu_ratio(w2) == pytest.approx(4.5)
    assert bench.cpu_ratio({**row, "cpu_mock_us_per_request": 0.0}) is None
    assert bench.cpu_ratio(None) is None


def _load(rps: float, gw_us: float, mock_us: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "cpu_target_us_per_request": gw_us,
        "cpu_gateway_us_per_request": gw_us,
        "cpu_mock_us_per_request": mock_us,
        "cpu_workers_pct": [40.0, 41.0],
        "cpu_redis_pct": 5.0,
        "cpu_redis_us_per_request": 10.0,
    }


def _res(trimtab_rps: float, cpu: float, recorded: bool) -> dict[str, Any]:
    """A results dict as main() builds it, with the figures the goals read."""
    load = {"c1": _load(500.0, cpu * 100, 100.0), "c16": _load(trimtab_rps, cpu * 40, 40.0)}
    return {
        "meta": {
            "started": "2026-12-02 04:00 UTC",
            "command": "bench/run.py",
            "duration_s": 10,
            "warmup_s": 2,
            "ttft_duration_s": 20,
            "pinning": "none",
            "setup": ["a note"],
        },
        "machine": {
            "cpu_model": "x",
            "cores": 2,
            "ram_gib": 1,
            "os": "y",
            "kernel": "z",
            "python": "3.11",
            "wrk": "4.1",
            "versions": {},
        },
        # inserted out of order: the report orders the columns itself
        "targets": {
            "litellm": {"load": {"c1": _load(40.0, 900, 100), "c16": _load(100.0, 900, 40)}},
            bench.W2: {"load": {"c1": _load(450.0, 300, 100), "c16": _load(5000.0, 200, 40)}},
            "trimtab": {
                "load": load,
                "memory": {"idle": {"rss_mib": 100.0}, "after": {"rss_mib": 120.0}},
            },
            "direct": {"load": {"c1": _load(9000.0, 0, 50), "c16": _load(30000.0, 0, 20)}},
        },
        "added": {
            "trimtab": {"c1_p50_ms": 0.5, "c1_p99_ms": 2.0, "c16_p99_ms": 1.0, "ttft_p50_ms": 0.4},
            "litellm": {"c16_p99_ms": 20.0},
        },
        "recording": {"ok": recorded, "sent": 10, "completed": 10, "verdict": "PASS: x"},
        "recording_w2": {"ok": True, "sent": 7, "completed": 7, "verdict": "PASS: y"},
    }


def _verdicts(res: dict[str, Any]) -> dict[str, bool | None]:
    return {c["name"]: c["pass"] for c in bench.evaluate(res)}


def test_goals_are_issue_11s_at_their_bounds() -> None:
    ok = _verdicts(_res(trimtab_rps=3500.0, cpu=2.5, recorded=True))
    assert ok["gateway CPU / mock CPU per request @1"] is True  # <= 2.5
    assert ok["gateway CPU / mock CPU per request @16"] is True
    assert ok["requests/s @16 vs LiteLLM's, every request recorded"] is True  # 35 x 100
    assert ok["added p50 @1"] is True  # <= 0.5 ms
    assert ok["added p99 @1"] is True  # <= 2 ms
    assert ok["added TTFT p50"] is True
    assert ok["added p99 @16 vs LiteLLM's"] is True
    assert ok["RSS (idle and after the run)"] is True
    assert ok[f"{bench.W2}: requests/s @16, every request recorded (informative)"] is True

    slow = _verdicts(_res(trimtab_rps=3499.0, cpu=2.6, recorded=True))
    assert slow["gateway CPU / mock CPU per request @1"] is False
    assert slow["gateway CPU / mock CPU per request @16"] is False
    assert slow["requests/s @16 vs LiteLLM's, every request recorded"] is False

    lost = _verdicts(_res(trimtab_rps=9000.0, cpu=1.0, recorded=False))
    assert lost["requests/s @16 vs LiteLLM's, every request recorded"] is False

    alone = _res(trimtab_rps=3500.0, cpu=1.0, recorded=True)
    del alone["targets"]["litellm"]
    assert _verdicts(alone)["requests/s @16 vs LiteLLM's, every request recorded"] is None

    workers_only = _res(trimtab_rps=3500.0, cpu=1.0, recorded=True)
    del workers_only["targets"]["trimtab"], workers_only["added"]["trimtab"]
    row = bench.evaluate(workers_only)
    assert [c["name"] for c in row] == [
        f"{bench.W2}: requests/s @16, every request recorded (informative)"
    ]
    assert row[0]["measured"] == "5,000 rps (50.00 x LiteLLM's)"


def test_report_columns_and_recording_rows() -> None:
    md = bench.render_markdown(_res(trimtab_rps=3500.0, cpu=2.0, recorded=True))
    header = next(line for line in md.splitlines() if line.startswith("| | "))
    assert header == "| | direct mock | trimtab | trimtab, 2 workers | LiteLLM proxy |"
    assert "| trimtab | 10 | 10 |" in md
    assert "| trimtab, 2 workers | 7 | 7 |" in md
    assert (
        "| trimtab-w2: CPU per worker @16 (% of a core); Redis's | — | — | 40.0 / 41.0; 5.0 |" in md
    )


def test_worker_pids_skips_the_resource_tracker() -> None:
    """A supervisor's shape: multiprocessing's spawn children and its resource tracker."""
    code = (
        "import multiprocessing as mp, time\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context('spawn')\n"
        "    ps = [ctx.Process(target=time.sleep, args=(30,)) for _ in range(2)]\n"
        "    [p.start() for p in ps]\n"
        "    print('up', flush=True)\n"
        "    time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    children: list[int] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"up"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = [
                int(c)
                for t in Path(f"/proc/{proc.pid}/task").iterdir()
                for c in (t / "children").read_text().split()
            ]
            if len(children) == 3:  # two workers and the resource tracker
                break
            time.sleep(0.05)
        assert len(children) == 3, children
        workers = bench.worker_pids(proc.pid)
        assert len(workers) == 2
        assert set(workers) < set(children)
        for pid in workers:
            assert b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        for pid in children:  # spawned children outlive a killed parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def test_the_long_prompt_and_answer_are_prose_of_their_size_without_personal_data() -> None:
    """--prompt-bytes 2048 / --reply-bytes 1024: realistic text (sentences, figures), which
    the benchmark's guardrail policy scans whole and finds nothing in: the answer every
    gateway must return unchanged."""
    prompt = bench.prompt_text(2048)
    answer = bench_mock.Reply(1024)
    assert len(prompt.encode()) in range(2040, 2049) and prompt.count(". ") > 15
    assert len(answer.content) in range(1024, 1040) and answer.content.count(". ") > 8
    assert "".join(answer.pieces) == answer.content and len(answer.pieces) > 150
    assert answer.usage["completion_tokens"] == len(answer.pieces)
    for text in (prompt, answer.content):
        assert sum(c.isdigit() for c in text) > 20
        assert detect(text) == [] and injection.scan(text) == []
    assert bench.prompt_text(0) == bench.SHORT_PROMPT
    short = bench_mock.Reply(0)
    assert short.content == bench.Payload().content and short.usage["completion_tokens"] == 9


def test_a_chat_stream_is_read_back_line_by_line_and_whole() -> None:
    wire = sys.modules["gateway_bench.wire"]  # loaded by bench/run.py
    lines = [
        b'data: {"choices": [{"delta": {"role": "assistant"}}]}',
        b"",
        b'data: {"choices": [{"delta": {"content": "Hel"}}]}',
        b": a comment",
        b'data: {"choices": [{"delta": {"content": "lo"}}], "usage": null}',
        b'data: {"choices": [], "usage": {"total_tokens": 7}}',
        b"data: [DONE]",
    ]
    stream = wire.ChatStream()
    assert [stream.feed(line) for line in lines] == [False, False, True, False, True, False, False]
    assert (stream.text, stream.usage, stream.done) == ("Hello", {"total_tokens": 7}, True)
    assert wire.parse_sse(b"\n".join(lines)) == ("Hello", {"total_tokens": 7}, True)
    assert wire.parse_sse(lines[2]) == ("Hel", None, False)  # no [DONE], no usage
