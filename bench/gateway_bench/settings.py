"""Where the gateway benchmark's files are, what it calls and on which CPUs, the goals it
judges trimtab against (issue 11's, docs/benchmarks.md), the targets' labels, its errors
and its log lines."""

from __future__ import annotations

import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]  # bench/


REPO = BENCH_DIR.parent


RESULTS = BENCH_DIR / "results"


LOGS = RESULTS / "logs"  # the default; a run with --out logs into OUT/logs


MOCK_SCRIPT = BENCH_DIR / "mock_upstream.py"


WRK_SCRIPT = BENCH_DIR / "wrk_chat.lua"


LITELLM_VENV = BENCH_DIR / ".venv-litellm"


TRIMTAB_BIN = REPO / ".venv" / "bin" / "trimtab"


HOST = "127.0.0.1"


TRIMTAB_KEY = "tt-bench-key"


LITELLM_KEY = "sk-litellm-bench"  # LiteLLM wants master keys to start with "sk-"


MODEL = "bench-model"


SLOW_SUFFIX = "-slowstream"  # the mock spaces SSE chunks out for model names containing it


CONCURRENCIES = (1, 16)


CPU_LOAD = 0  # wrk, the mock and the streaming client


CPU_TARGET = 1  # the gateway under test (one process; trimtab-w2 runs on every CPU)


W2 = "trimtab-w2"  # `trimtab serve --workers 2`, limits and budgets in Redis


W2_WORKERS = 2


TARGET_ORDER = ("direct", "trimtab", W2, "litellm")  # measured and shown in this order


# The targets the numbers are judged against: issue 11's goals (docs/benchmarks.md), for
# the one-process trimtab.
GOAL_CPU_VS_MOCK = 2.5  # gateway CPU per request / mock CPU per request, at 1 and at 16


GOAL_RPS_C16_VS_LITELLM = 35.0  # requests/s at 16 connections, x LiteLLM's in the same run


GOAL_ADDED_P50_C1_MS = 0.5


GOAL_ADDED_P99_C1_MS = 2.0


GOAL_ADDED_TTFT_MS = 0.5  # added time to first token, p50


GOAL_P99_C16_VS_LITELLM = 0.1


GOAL_RSS_MIB = 150.0


STREAM_CHECK_TRIES = 3


TTFT_BLOCK = 20  # streams per target before moving to the next target


TTFT_SETTLE_S = 0.05


FOREIGN_CPU_WARN_PCT = 10.0  # warn when other processes use more than this % of a core


LABELS = {
    "direct": "direct mock",
    "trimtab": "trimtab",
    W2: f"trimtab, {W2_WORKERS} workers",
    "litellm": "LiteLLM proxy",
}


def is_trimtab(name: str) -> bool:
    """Whether a target is one of ours (its failures are hard failures)."""
    return name in ("trimtab", W2)


class SetupError(RuntimeError):
    """The benchmark cannot run (missing tool, install failure)."""


class TargetError(RuntimeError):
    """A target failed to start or answered wrongly."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loud(msg: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!!! {msg}\n{bar}\n", flush=True)
