"""The run judged against the goals: each target met or missed, with the numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway_bench.report import _num, fmt
from gateway_bench.settings import (
    CONCURRENCIES,
    GOAL_ADDED_P50_C1_MS,
    GOAL_ADDED_P99_C1_MS,
    GOAL_ADDED_TTFT_MS,
    GOAL_CPU_VS_MOCK,
    GOAL_P99_C16_VS_LITELLM,
    GOAL_RPS_C16_VS_LITELLM,
    GOAL_RSS_MIB,
    W2,
)


def cpu_ratio(row: dict[str, Any] | None) -> float | None:
    """A load row's gateway CPU per request over the mock's, over the same requests
    (trimtab-w2's gateway figure includes its Redis)."""
    if not row:
        return None
    gw = _num(row.get("cpu_gateway_us_per_request"))
    if gw is None:
        gw = _num(row.get("cpu_target_us_per_request"))
    mock = _num(row.get("cpu_mock_us_per_request"))
    return None if gw is None or not mock else gw / mock


def evaluate(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The one-process trimtab against issue 11's goals (and the RSS and p99 @16 goals kept
    from before); trimtab-w2's figures as informative rows."""
    a = res["added"].get("trimtab")
    tg = res["targets"]
    crit: list[dict[str, Any]] = []

    def add(name: str, goal: str, measured: float | None, ok: bool | None, unit: str) -> None:
        crit.append(
            {
                "name": name,
                "goal": goal,
                "measured": fmt(measured, unit),
                "pass": ok,
                "value": measured,
            }
        )

    lite_rps = _num((tg.get("litellm", {}).get("load", {}).get("c16") or {}).get("rps"))
    rps = _num((tg.get("trimtab", {}).get("load", {}).get("c16") or {}).get("rps"))
    if a is not None:
        _goals_of_one_process(res, a, rps, lite_rps, add)
    w2 = tg.get(W2, {}).get("load", {})
    if w2:
        w2_rps = _num((w2.get("c16") or {}).get("rps"))
        rec_w2 = res.get("recording_w2") or {}
        vs = [
            f"{w2_rps / base:.2f} x {what}"
            for base, what in ((rps, "one process"), (lite_rps, "LiteLLM's"))
            if w2_rps is not None and base
        ]
        add(
            f"{W2}: requests/s @16, every request recorded (informative)",
            "every request recorded",
            w2_rps,
            bool(rec_w2.get("ok")),
            " rps"
            + (f" ({'; '.join(vs)})" if vs else "")
            + ("" if rec_w2.get("ok") else " (recording check failed)"),
        )
    return crit


def _goals_of_one_process(
    res: dict[str, Any],
    a: dict[str, Any],
    rps: float | None,
    lite_rps: float | None,
    add: Callable[[str, str, float | None, bool | None, str], None],
) -> None:
    """The one-process trimtab's rows of evaluate()."""
    tg = res["targets"]
    load = tg["trimtab"].get("load", {})
    for c in CONCURRENCIES:
        v = cpu_ratio(load.get(f"c{c}"))
        add(
            f"gateway CPU / mock CPU per request @{c}",
            f"<= {GOAL_CPU_VS_MOCK:g} x",
            v,
            None if v is None else v <= GOAL_CPU_VS_MOCK,
            " x",
        )
    rps_x = None if rps is None or not lite_rps else rps / lite_rps
    rec_ok = bool((res.get("recording") or {}).get("ok"))
    add(
        "requests/s @16 vs LiteLLM's, every request recorded",
        f">= {GOAL_RPS_C16_VS_LITELLM:g} x LiteLLM's"
        + ("" if lite_rps is None else f" ({fmt(lite_rps * GOAL_RPS_C16_VS_LITELLM)} rps)")
        + " and all recorded",
        rps,
        False if not rec_ok else None if rps_x is None else rps_x >= GOAL_RPS_C16_VS_LITELLM,
        " rps"
        + ("" if rps_x is None else f" ({rps_x:.1f} x)")
        + ("" if rec_ok else " (recording check failed)"),
    )
    v = a.get("c1_p50_ms")
    add(
        "added p50 @1",
        f"<= {GOAL_ADDED_P50_C1_MS} ms",
        v,
        None if v is None else v <= GOAL_ADDED_P50_C1_MS,
        " ms",
    )
    v = a.get("c1_p99_ms")
    add(
        "added p99 @1",
        f"<= {GOAL_ADDED_P99_C1_MS} ms",
        v,
        None if v is None else v <= GOAL_ADDED_P99_C1_MS,
        " ms",
    )
    v = a.get("ttft_p50_ms")
    add(
        "added TTFT p50",
        f"<= {GOAL_ADDED_TTFT_MS} ms",
        v,
        None if v is None else v <= GOAL_ADDED_TTFT_MS,
        " ms",
    )
    v = a.get("c16_p99_ms")
    lite = res["added"].get("litellm", {}).get("c16_p99_ms")
    ratio = None if v is None or not lite else v / lite
    add(
        "added p99 @16 vs LiteLLM's",
        f"< {GOAL_P99_C16_VS_LITELLM:g} x LiteLLM's"
        + ("" if lite is None else f" ({fmt(lite * GOAL_P99_C16_VS_LITELLM)} ms)"),
        v,
        None if ratio is None else ratio < GOAL_P99_C16_VS_LITELLM,
        " ms" + ("" if ratio is None else f" ({ratio:.3f} x)"),
    )
    mem = tg["trimtab"].get("memory", {})
    worst = max([m["rss_mib"] for m in (mem.get("idle"), mem.get("after")) if m] or [float("nan")])
    add(
        "RSS (idle and after the run)",
        f"< {GOAL_RSS_MIB:g} MiB",
        worst,
        None if worst != worst else worst < GOAL_RSS_MIB,
        " MiB",
    )
