"""The soak's Markdown report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from soak_bench.settings import CLIENT_TIMEOUT_S, HOST, LATE_S
from soak_bench.traffic import OK


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return out


def minute_rows(samples: list[dict[str, Any]], every_s: float) -> Iterator[dict[str, Any]]:
    """Samples at each whole minute, the first and the last; counts summed over the minute."""
    acc: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    span = 0.0
    prev_t = 0.0
    for i, s in enumerate(samples):
        for col in ("completed", "2xx", "4xx", "5xx", "stream_err", "other"):
            acc[col] += s[col]
        codes.update(s["4xx_by_code"])
        span += s["t_s"] - prev_t
        prev_t = s["t_s"]
        last = i == len(samples) - 1
        minute = round(s["t_s"] / every_s) * every_s % 60 == 0
        if i == 0 or minute or last:
            yield {**s, "sum": dict(acc), "codes": dict(codes), "span": span}
            acc.clear()
            codes.clear()
            span = 0.0


def render(res: dict[str, Any]) -> str:
    meta, load = res["meta"], res["load"]
    mem, rows = res["memory"], res["recording"]
    lines = [
        "# trimtab soak test",
        "",
        f"{meta['started']}; `{meta['command']}`; {meta['elapsed_s']:g} s in all.",
        "",
        f"Machine: {res['machine']['cpu_model']}, {res['machine']['logical_cpus']} logical CPUs "
        f"({res['machine']['cpus_usable']} usable), {res['machine']['mem_total_gib']} GiB RAM, "
        f"Linux {res['machine']['kernel']}, Python {res['machine']['python']}, "
        f"trimtab {meta['trimtab_version']}. Load average at start "
        f"{' '.join(res['machine']['loadavg_at_start'])}.",
        "",
        f"Load: {meta['rate']:g} req/s for {meta['minutes']:g} min (open loop, at most "
        f"{meta['concurrency']} in flight, client timeout {CLIENT_TIMEOUT_S:g} s), "
        f"samples every {meta['sample_s']:g} s. Everything on {HOST}: the mock upstream, "
        "one trimtab (keys on, bodies recorded, SQLite, in-process state), the client.",
        "",
        "## Verdicts",
        "",
    ]
    for name, verdict in res["verdicts"].items():
        lines.append(f"- **{name}**: {verdict}")
    lines += ["", "## Samples (each minute; counts are over the minute before)", ""]
    table = []
    for s in minute_rows(res["samples"], meta["sample_s"]):
        m = s["metrics"] if isinstance(s["metrics"], dict) else {}
        sm = s["sum"]
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(s["codes"].items())) or "-"
        rps = sm["completed"] / s["span"] if s["span"] else None
        table.append(
            [
                f"{s['t_s']:g}",
                sm["completed"],
                round(rps, 1) if rps is not None else None,
                sm["2xx"],
                codes,
                sm["5xx"],
                sm["stream_err"],
                sm["other"],
                s["in_flight"],
                s["rss_mib"],
                s["fds"],
                s["threads"],
                s["cpu_pct"],
                m.get("queue_depth"),
                m.get("recorded"),
                m.get("spilled"),
                s["loadavg_1m"],
            ]
        )
    lines += md_table(
        [
            "t (s)", "done", "req/s", "2xx", "4xx by code", "5xx", "stream err", "other",
            "in flight", "RSS MiB", "fds", "threads", "CPU %", "queue", "recorded", "spilled",
            "load avg",
        ],
        table,
    )  # fmt: skip
    lines += [
        "",
        "(`stream err`: a 200 stream that ended with an explicit error event; `other`: no "
        "HTTP answer, a truncated stream or an unparseable body; `recorded`/`spilled`: "
        "trimtab's /metrics counters; `CPU %`: trimtab's, of one core; `load avg`: the "
        "machine's one-minute load average.) All samples are in soak.json.",
        "",
        "## Totals",
        "",
        f"- sent {load['sent']:,} of {load['scheduled']:,} scheduled, {load['completed']:,} "
        f"answered; achieved {load['achieved_rps']:.1f} req/s over the schedule",
        f"- sent late (> {LATE_S * 1000:g} ms after due, waiting for a free slot): "
        f"{load['late']:,}; worst {load['max_late_ms']:.1f} ms; peak in flight "
        f"{load['peak_in_flight']}",
    ]
    if load["stopped_early"]:
        lines.append(f"- **stopped early**: {load['stopped_early']}")
    lines += ["", "### Outcomes by traffic class", ""]
    table = []
    for row in res["classes"]:
        outs = "; ".join(f"{o}: {c:,}" for o, c in row["outcomes"].items())
        bad = "; ".join(f"**{o}: {c}**" for o, c in row["unexpected"].items()) or "none"
        table.append(
            [row["kind"], row["what"], row["n"], row["streamed"], outs, bad,
             row["p50_ms"], row["p99_ms"]]
        )  # fmt: skip
    lines += md_table(
        ["class", "model / fault", "n", "streamed", "outcomes", "unexpected", "p50 ms", "p99 ms"],
        table,
    )
    lines += ["", "### Errors by class (everything not a plain success)", ""]
    errs = [(o, c) for o, c in load["outcomes"].items() if o not in OK]
    lines += md_table(["outcome (status code / stream event)", "count"], sorted(errs))
    m = res["final_metrics"]
    lines += [
        "",
        "### What trimtab did (its /metrics at the end)",
        "",
        f"- upstream attempts by outcome: {m.get('attempts')}",
        f"- fallbacks: {fmt(m.get('fallbacks'))}; breaker trips: {m.get('breaker_trips')}; "
        f"breakers open now: {m.get('breaker_open')}",
        f"- cache: {m.get('cache')}; policy refusals: {m.get('policy_refusals')}; "
        f"policy state errors: {fmt(m.get('policy_state_errors'))}",
        f"- telemetry: recorded {fmt(m.get('recorded'))}, spilled {fmt(m.get('spilled'))}, "
        f"write errors {fmt(m.get('write_errors'))}, queue depth {fmt(m.get('queue_depth'))}",
        "",
        "## Memory",
        "",
        f"- RSS at start {fmt(mem.get('start_mib'))} MiB, after warm-up "
        f"({fmt(mem.get('at_warmup_t_s'))} s) {fmt(mem.get('at_warmup_mib'))} MiB, at the end "
        f"{fmt(mem.get('end_mib'))} MiB, max {fmt(mem.get('max_mib'))} MiB",
        f"- growth after warm-up: {fmt(mem.get('growth_pct'))} % (limit "
        f"{mem['limit_pct']:g} %); least-squares slope over the samples after warm-up: "
        f"{fmt(mem.get('slope_mib_per_10min'))} MiB per 10 min",
        f"- open fds {res['fds']['first']} -> {res['fds']['last']} (max {res['fds']['max']}); "
        f"threads {res['threads']['first']} -> {res['threads']['last']}",
        f"- mock upstream RSS {fmt(res['mock_rss']['first'])} -> "
        f"{fmt(res['mock_rss']['last'])} MiB",
        "",
        "## Rows vs requests sent",
        "",
        f"- stop: {res['stop']}",
        f"- rows in the store {fmt(rows.get('rows'))} for {rows['sent']:,} requests sent; "
        f"spill file lines {rows['spill_lines']}",
        f"- answers whose `x-trimtab-request-id` has no row: {fmt(rows.get('ids_missing'))}; "
        f"rows whose status disagrees with what the client saw: "
        f"{fmt(rows.get('status_mismatches'))}; answers without an id (no HTTP answer): "
        f"{fmt(rows.get('answers_without_id'))}",
        f"- store size {rows['db_bytes'] / 1024**2:.1f} MiB (+ WAL "
        f"{rows.get('db-wal_bytes', 0) / 1024**2:.1f} MiB)",
    ]
    if rows.get("error"):
        lines.append(f"- **could not read the store**: {rows['error']}")
    if rows.get("ids_missing_sample"):
        lines.append(f"- missing ids, first: {rows['ids_missing_sample']}")
    if rows.get("status_mismatch_sample"):
        lines.append(f"- status mismatches, first: {rows['status_mismatch_sample']}")
    logs = res["log"]
    lines += [
        "",
        "## trimtab's log",
        "",
        f"{logs['lines']:,} lines; by level {logs['levels']}; tracebacks {logs['tracebacks']}.",
    ]
    if logs["noteworthy"]:
        lines += ["", "Warnings and errors (digits replaced by N), most frequent first:", "", "```"]
        lines += [f"{c:>7}  {line}" for line, c in logs["noteworthy"]]
        lines.append("```")
    if res["problems"]:
        lines += ["", "## Problems", ""]
        lines += [f"- {p}" for p in res["problems"]]
    return "\n".join(lines)
