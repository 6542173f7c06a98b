"""bench/run.py's command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from gateway_bench.settings import RESULTS, TARGET_ORDER, TRIMTAB_BIN, W2, W2_WORKERS


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="trimtab vs direct mock vs LiteLLM: added latency, rps, TTFT, RSS, recording.",
    )
    p.add_argument("--quick", action="store_true", help="short smoke run (~1 minute)")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (10)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds per measurement (2)")
    p.add_argument(
        "--ttft-duration",
        type=float,
        default=None,
        help="seconds of round-robin streaming requests for TTFT (default 2 x --duration)",
    )
    p.add_argument(
        "--targets",
        default=",".join(TARGET_ORDER),
        help=f"comma-separated subset of {','.join(TARGET_ORDER)} (default: all; direct is "
        f"always measured; {W2} is `trimtab serve --workers {W2_WORKERS}` on every CPU, its "
        "limits and budgets in a redis-server the run starts)",
    )
    p.add_argument(
        "--pin",
        choices=("split", "none"),
        default="split",
        help="split: wrk+mock+client on CPU 0, the gateway on CPU 1 (default); none: no taskset",
    )
    p.add_argument(
        "--spin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run a SCHED_IDLE busy loop on each CPU so idle vCPUs do not halt (default: off;"
        " on this VM it costs throughput)",
    )
    p.add_argument(
        "--stream-gap-ms",
        type=float,
        default=0.0,
        help="mock's delay between SSE chunks in the TTFT phase (0: whole stream at once)",
    )
    p.add_argument(
        "--slow-gap-ms",
        type=float,
        default=50.0,
        help="mock's delay between SSE chunks for the chunk-by-chunk streaming check",
    )
    p.add_argument(
        "--retry-budget",
        type=float,
        default=90.0,
        help="seconds after which disturbed measurements are no longer redone (90)",
    )
    p.add_argument("--litellm-spec", default="litellm[proxy]", help="pip spec for LiteLLM")
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.add_argument(
        "--trimtab-bin", default=str(TRIMTAB_BIN), help="the trimtab executable to benchmark"
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="redo a measurement up to N times if other processes disturbed it (2)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="wait up to S seconds for other processes to go idle before starting (0 = no)",
    )
    p.add_argument(
        "--no-journal",
        action="store_true",
        help="run trimtab with telemetry.journal: false, to measure what the journal costs",
    )
    p.add_argument(
        "--guardrails",
        action="store_true",
        help="run the trimtab targets with a gateway guardrail policy (PII redaction both "
        "ways, injection block, deny patterns), to measure what guardrails cost",
    )
    p.add_argument(
        "--prompt-bytes",
        type=int,
        default=0,
        help="send a prompt of this many bytes (a support ticket: sentences with a few "
        "figures, no personal data) instead of the 24-byte one",
    )
    p.add_argument(
        "--reply-bytes",
        type=int,
        default=0,
        help="have the mock answer with this many bytes of prose (one word a stream "
        "chunk) instead of its 5-word greeting",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, SQLite db)")
    p.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    if args.ttft_duration is None:
        args.ttft_duration = 2 * args.duration
    args.targets = [s.strip() for s in args.targets.split(",") if s.strip()]
    bad = set(args.targets) - set(TARGET_ORDER)
    if bad:
        p.error(f"unknown targets: {sorted(bad)}")
    if "direct" not in args.targets:
        args.targets.insert(0, "direct")
    return args
