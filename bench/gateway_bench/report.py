"""The run's Markdown report: the tables side by side, the setup notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway_bench.recording import RECORDING_KEYS
from gateway_bench.settings import CONCURRENCIES, LABELS, TARGET_ORDER, W2, W2_WORKERS, is_trimtab


def fmt(x: float | None, unit: str = "") -> str:
    if x is None or x != x:  # None or NaN
        return "—"
    if abs(x) >= 100:
        s = f"{x:,.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.3f}"
    return f"{s}{unit}"


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def render_markdown(res: dict[str, Any]) -> str:
    names = [n for n in TARGET_ORDER if n in res["targets"]]
    tg = res["targets"]
    added = res["added"]

    def load(n: str, c: int, key: str) -> float | None:
        r = tg[n].get("load", {}).get(f"c{c}")
        return None if r is None else _num(r.get(key))

    def add(n: str, key: str) -> float | None:
        return _num(added.get(n, {}).get(key))

    rows: list[tuple[str, list[str]]] = []
    for c in CONCURRENCIES:
        rows.append((f"p50 latency @{c} (ms)", [fmt(load(n, c, "p50_ms")) for n in names]))
        rows.append((f"p99 latency @{c} (ms)", [fmt(load(n, c, "p99_ms")) for n in names]))
        rows.append(
            (
                f"**added p50 @{c}** (ms)",
                ["—" if n == "direct" else fmt(add(n, f"c{c}_p50_ms")) for n in names],
            )
        )
        rows.append(
            (
                f"**added p99 @{c}** (ms)",
                ["—" if n == "direct" else fmt(add(n, f"c{c}_p99_ms")) for n in names],
            )
        )

    def sub(n: str, c: int, group: str, key: str) -> float | None:
        r = tg[n].get("load", {}).get(f"c{c}") or {}
        return _num((r.get(group) or {}).get(key))

    for c in CONCURRENCIES:
        rows.append(
            (
                f"p99 @{c}, wrk's CO-corrected (ms)",
                [fmt(sub(n, c, "wrk_corrected", "p99_ms")) for n in names],
            )
        )
    rows.append(("**requests/s @16**", [fmt(load(n, 16, "rps")) for n in names]))
    for c in CONCURRENCIES:
        rows.append(
            (
                f"gateway CPU @{c} (% of a core)",
                ["—" if n == "direct" else fmt_pct(load(n, c, "cpu_target_pct")) for n in names],
            )
        )
    rows.append(
        (
            "mock / wrk CPU @16 (% of a core)",
            [
                f"{fmt_pct(load(n, 16, 'cpu_mock_pct'))} / {fmt_pct(load(n, 16, 'cpu_wrk_pct'))}"
                for n in names
            ],
        )
    )
    if W2 in names:
        for c in CONCURRENCIES:
            rows.append(
                (
                    f"{W2}: CPU per worker @{c} (% of a core); Redis's",
                    [
                        " / ".join(fmt_pct(x) for x in (tg[n]["load"][f"c{c}"]["cpu_workers_pct"]))
                        + f"; {fmt_pct(load(n, c, 'cpu_redis_pct'))}"
                        if n == W2 and f"c{c}" in tg[n].get("load", {})
                        else "—"
                        for n in names
                    ],
                )
            )

    def gw_us(n: str, c: int) -> float | None:
        """The gateway's CPU per request; trimtab-w2's includes its Redis."""
        v = load(n, c, "cpu_gateway_us_per_request")
        return load(n, c, "cpu_target_us_per_request") if v is None else v

    for c in CONCURRENCIES:
        rows.append(
            (
                f"**CPU per request @{c}**, gateway / mock (µs)",
                [
                    "—"
                    if n == "direct"
                    else f"{fmt(gw_us(n, c))} / {fmt(load(n, c, 'cpu_mock_us_per_request'))}"
                    for n in names
                ],
            )
        )
        if W2 in names:
            rows.append(
                (
                    f"of which Redis @{c} (µs)",
                    [
                        fmt(load(n, c, "cpu_redis_us_per_request")) if n == W2 else "—"
                        for n in names
                    ],
                )
            )

    def ratio(n: str, c: int) -> str:
        gw, mock = gw_us(n, c), load(n, c, "cpu_mock_us_per_request")
        return "—" if n == "direct" or not gw or not mock else f"{gw / mock:.1f}x"

    for c in CONCURRENCIES:
        rows.append((f"**gateway CPU / mock CPU per request @{c}**", [ratio(n, c) for n in names]))
    rows.append(("steal @16 (% of a core)", [fmt_pct(load(n, 16, "steal_pct")) for n in names]))
    for c in CONCURRENCIES:
        if any(is_trimtab(n) for n in names):
            rows.append(
                (
                    f"x-trimtab-overhead-ms mean @{c}",
                    [
                        fmt(sub(n, c, "self_reported_overhead_ms", "mean"))
                        if is_trimtab(n)
                        else "—"
                        for n in names
                    ],
                )
            )
    rows.append(
        (
            "errors / bad responses (all load runs)",
            [str(tg[n].get("load_errors", "—")) for n in names],
        )
    )

    def ttft(n: str, key: str) -> float | None:
        return _num(tg[n].get("ttft", {}).get(key))

    rows.append(("TTFT p50 (ms)", [fmt(ttft(n, "p50_ms")) for n in names]))
    rows.append(("TTFT p99 (ms)", [fmt(ttft(n, "p99_ms")) for n in names]))
    rows.append(
        (
            "**added TTFT p50** (ms)",
            ["—" if n == "direct" else fmt(add(n, "ttft_p50_ms")) for n in names],
        )
    )
    rows.append(
        (
            "**added TTFT p99** (ms)",
            ["—" if n == "direct" else fmt(add(n, "ttft_p99_ms")) for n in names],
        )
    )
    rows.append(
        (
            "streams measured (bad)",
            [
                f"{tg[n].get('ttft', {}).get('n', '—')} ({tg[n].get('ttft', {}).get('bad', '—')})"
                for n in names
            ],
        )
    )

    def rss(n: str, key: str) -> float | None:
        m = tg[n].get("memory", {}).get(key)
        return None if m is None else m.get("rss_mib")

    rows.append(("RSS idle after start (MiB)", [fmt(rss(n, "idle")) for n in names]))
    rows.append(("RSS after the run (MiB)", [fmt(rss(n, "after")) for n in names]))
    rows.append(
        (
            "peak RSS, VmHWM (MiB)",
            [fmt((tg[n].get("memory", {}).get("after") or {}).get("hwm_mib")) for n in names],
        )
    )

    lines = [
        f"## Results — {res['meta']['started']}",
        "",
        f"Command: `{res['meta']['command']}`  ",
        f"Per measurement: {res['meta']['duration_s']} s after "
        f"{res['meta']['warmup_s']} s warm-up; "
        f"TTFT phase {res['meta']['ttft_duration_s']} s; pinning: {res['meta']['pinning']}",
        "",
        "| | " + " | ".join(LABELS[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    lines += [
        "",
        f"Mock upstream capacity (direct, 16 connections, sharing its core with wrk): "
        f"{fmt(res.get('mock', {}).get('capacity_rps'))} requests/s.",
        "",
    ]
    if res["meta"].get("setup"):
        lines += [f"- {note}" for note in res["meta"]["setup"]] + [""]
    recs = [(n, res[k]) for n, k in RECORDING_KEYS.items() if res.get(k)]
    if recs:
        lines += [
            "### Every request recorded? (trimtab)",
            "",
            "| target | requests sent | requests completed "
            "| rows in `requests` (SQLite, after SIGTERM) | API summary count | verdict |",
            "|---|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {LABELS[n]} | {rec.get('sent')} | {rec.get('completed')} | "
            f"{rec.get('db_rows', '—')} | {rec.get('api_count', '—')} | {rec.get('verdict')} |"
            for n, rec in recs
        ]
        lines.append("")
    crit = res.get("criteria") or []
    if crit:
        lines += [
            "### Against the targets",
            "",
            "| criterion | goal | measured | |",
            "|---|---|---|---|",
        ]
        for c in crit:
            mark = {True: "PASS", False: "**FAIL**", None: "n/a"}[c["pass"]]
            lines.append(f"| {c['name']} | {c['goal']} | {c['measured']} | {mark} |")
        lines.append("")
    if res.get("problems"):
        lines += ["### Problems", ""] + [f"- {p}" for p in res["problems"]] + [""]
    m = res["machine"]
    v = m["versions"]
    lines += [
        "### Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['cores']} cores; RAM {m['ram_gib']} GiB; {m['os']}, "
        f"kernel {m['kernel']}",
        f"- Python {m['python']}; wrk {m['wrk']}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "",
    ]
    return "\n".join(lines)


def setup_notes(
    targets: Sequence[str], all_cpus: str | None, guardrails: bool = False
) -> list[str]:
    """What differs between the trimtab targets, for the report."""
    notes: list[str] = []
    if guardrails:
        notes.append(
            "--guardrails: every trimtab target runs the gateway guardrail policy (PII "
            "redacted in and out, streams included; injection blocked; a deny pattern each way)"
        )
    if "trimtab" in targets:
        notes.append("trimtab: one process; rate limits and budgets in the process (no Redis)")
    if W2 in targets:
        where = f"on CPUs {all_cpus}" if all_cpus else "unpinned"
        notes.append(
            f"{W2}: `trimtab serve --workers {W2_WORKERS}` (a supervisor and {W2_WORKERS} "
            f"workers on one port), {where}, sharing them with wrk and the mock; the same "
            f"configuration plus `state: {{url: redis://127.0.0.1:PORT/0, processes: "
            f"{W2_WORKERS}}}`, a redis-server the run starts ({where}), as --workers needs "
            "with limits and budgets; its CPU per request is the supervisor's, the workers' "
            "and Redis's; its own SQLite db"
        )
    return notes
