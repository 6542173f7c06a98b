"""Guardrails off against on through the real server, interleaved: what the default policy
adds on issue 15's payload (a 2 KB prompt, a 1 KB answer).

    .venv/bin/python bench/guardrails_ab.py [--pairs 2] [--duration 10]

Runs `bench/run.py --targets trimtab --prompt-bytes 2048 --reply-bytes 1024` alternately
without and with `--guardrails` (off, on, off, on, ...), each run with its own direct-mock
baseline, and prints one table: every run's p50/p99 at 1 connection (and what it adds over
the mock in the same run), time to first token p50 (streaming), requests/s at 16
connections and the gateway's CPU per request; then each pair's on - off difference.
Each run's own report stays in bench/results/guardrails_ab/<n>-<off|on>/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RUN_PY = BENCH_DIR / "run.py"
OUT = BENCH_DIR / "results" / "guardrails_ab"

# (label, how to read it from a run's latest.json, unit)
METRICS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("p50 @1", ("targets", "trimtab", "load", "c1", "p50_ms"), "ms"),
    ("p99 @1", ("targets", "trimtab", "load", "c1", "p99_ms"), "ms"),
    ("added p50 @1 (over the mock)", ("added", "trimtab", "c1_p50_ms"), "ms"),
    ("added p99 @1 (over the mock)", ("added", "trimtab", "c1_p99_ms"), "ms"),
    ("TTFT p50, streaming", ("targets", "trimtab", "ttft", "p50_ms"), "ms"),
    ("added TTFT p50 (over the mock)", ("added", "trimtab", "ttft_p50_ms"), "ms"),
    ("requests/s @16", ("targets", "trimtab", "load", "c16", "rps"), ""),
    ("CPU per request @1", ("targets", "trimtab", "load", "c1", "cpu_target_us_per_request"), "µs"),
    (
        "CPU per request @16",
        ("targets", "trimtab", "load", "c16", "cpu_target_us_per_request"),
        "µs",
    ),
)


def dig(obj: Any, path: Sequence[str]) -> float | None:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return float(obj) if isinstance(obj, int | float) else None


def run_cmd(args: argparse.Namespace, on: bool, out: Path) -> list[str]:
    cmd = [sys.executable, str(RUN_PY), "--targets", "trimtab"]
    cmd += ["--prompt-bytes", str(args.prompt_bytes), "--reply-bytes", str(args.reply_bytes)]
    cmd += ["--duration", str(args.duration), "--wait-quiet", str(args.wait_quiet)]
    cmd += ["--out", str(out), *(["--guardrails"] if on else [])]
    return cmd


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"


def table(legs: list[dict[str, Any]]) -> str:
    """One column per run, then each pair's on - off and the mean of those."""
    heads = [f"{i + 1}: {'on' if leg['on'] else 'off'}" for i, leg in enumerate(legs)]
    pairs = [(legs[i], legs[i + 1]) for i in range(0, len(legs) - 1, 2)]
    heads += [f"on - off, pair {k + 1}" for k in range(len(pairs))] + ["on - off, mean"]
    lines = ["| | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for label, path, unit in METRICS:
        vals = [dig(leg["res"], path) for leg in legs]
        diffs = [
            None
            if (a := dig(off["res"], path)) is None or (b := dig(on["res"], path)) is None
            else b - a
            for off, on in pairs
        ]
        known = [d for d in diffs if d is not None]
        mean = statistics.fmean(known) if known else None
        cells = [fmt(v) for v in [*vals, *diffs, mean]]
        lines.append(f"| {label}{f' ({unit})' if unit else ''} | " + " | ".join(cells) + " |")
    rec = [str((leg["res"].get("recording") or {}).get("verdict", "—"))[:4] for leg in legs]
    lines.append("| every request recorded | " + " | ".join(rec) + " |" + " |" * len(pairs) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--pairs", type=int, default=2, help="off/on pairs (2: off, on, off, on)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--prompt-bytes", type=int, default=2048)
    p.add_argument("--reply-bytes", type=int, default=1024)
    p.add_argument("--wait-quiet", type=float, default=30.0)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    legs: list[dict[str, Any]] = []
    for i in range(2 * args.pairs):
        on = i % 2 == 1
        out = args.out / f"{i + 1}-{'on' if on else 'off'}"
        cmd = run_cmd(args, on, out)
        load = os.getloadavg()
        print(
            f"[ab] run {i + 1}, guardrails {'on' if on else 'off'}, load {load[0]:.2f}: "
            f"{shlex.join(cmd)}",
            flush=True,
        )
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False).returncode
        res = json.loads((out / "latest.json").read_text())
        legs.append({"on": on, "rc": rc, "load": load, "res": res})
        print(f"[ab]   exit {rc}; problems: {res.get('problems') or 'none'}", flush=True)
    print()
    command = shlex.join(["bench/guardrails_ab.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"Guardrails off vs on, {started}: `{command}`")
    for i, leg in enumerate(legs):
        print(
            f"- run {i + 1} ({'on' if leg['on'] else 'off'}): {leg['res']['meta']['started']}, "
            f"load average {leg['load'][0]:.2f} / {leg['load'][1]:.2f} / {leg['load'][2]:.2f} "
            f"at its start, exit {leg['rc']}, "
            f"problems: {'; '.join(leg['res'].get('problems') or []) or 'none'}"
        )
    print()
    md = table(legs)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(md + "\n")
    return 1 if any(leg["rc"] == 1 for leg in legs) else 0


if __name__ == "__main__":
    sys.exit(main())
