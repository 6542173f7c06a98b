"""After the load: every request's row in the store, the log's findings, memory flat or
growing, the outcomes per kind of request."""

from __future__ import annotations

import math
import re
import sqlite3
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from soak_bench.load import Load
from soak_bench.settings import MEMORY_GROWTH_LIMIT
from soak_bench.traffic import KINDS, STREAM_ERROR_STATUS


def check_rows(db: Path, spill: Path, load: Load) -> dict[str, Any]:
    """Rows in the store against requests sent, and each answer's id and status."""
    out: dict[str, Any] = {"sent": load.sent, "db_bytes": db.stat().st_size if db.exists() else 0}
    for suffix in ("-wal", "-shm"):
        extra = Path(str(db) + suffix)
        if extra.exists():
            out[f"db{suffix}_bytes"] = extra.stat().st_size
    out["spill_lines"] = len(spill.read_bytes().splitlines()) if spill.exists() else 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT id, status_code, error_type FROM requests").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["ok"] = False
        return out
    by_id = {str(r[0]): (int(r[1]), r[2]) for r in rows}
    out["rows"] = len(rows)
    out["db_status"] = dict(Counter(f"{s} {e or ''}".strip() for s, e in by_id.values()))
    missing: list[str] = []
    mismatched: list[dict[str, Any]] = []
    no_id = 0
    for res in load.results:
        if res.request_id is None:
            no_id += 1
            continue
        row = by_id.get(res.request_id)
        if row is None:
            missing.append(res.request_id)
            continue
        if " stream error " in res.outcome:
            want = (STREAM_ERROR_STATUS.get(res.error_code or "", 502), res.error_code)
            good = row[0] == want[0] and row[1] == want[1]
        else:
            good = row[0] == res.status
        if not good:
            mismatched.append({"id": res.request_id, "client": res.outcome, "row": list(row)})
    out["answers_without_id"] = no_id
    out["ids_missing"] = len(missing)
    out["ids_missing_sample"] = missing[:10]
    out["status_mismatches"] = len(mismatched)
    out["status_mismatch_sample"] = mismatched[:10]
    out["ok"] = len(rows) == load.sent and not missing and not mismatched and not out["spill_lines"]
    return out


def log_findings(log: Path) -> dict[str, Any]:
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    levels = Counter(m.group(1) for line in lines if (m := re.match(r"^([A-Z]+):? ", line)))
    noteworthy: Counter[str] = Counter()
    for line in lines:
        if re.match(r"^(WARNING|ERROR|CRITICAL):? ", line) or line.startswith("Traceback"):
            noteworthy[re.sub(r"\d+(\.\d+)?", "N", line)[:200]] += 1
    return {
        "lines": len(lines),
        "levels": dict(levels),
        "tracebacks": sum(1 for line in lines if line.startswith("Traceback")),
        "noteworthy": noteworthy.most_common(15),
        "tail": lines[-15:],
        # uvicorn's last words after a graceful stop (the lifespan shutdown flushed the queue)
        "shutdown_complete": "Application shutdown complete." in text,
    }


def pctl(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def memory_verdict(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """RSS at the end of warm-up against the end, and a least-squares slope after warm-up."""
    points = [(s["t_s"], s["rss_mib"]) for s in samples if s["rss_mib"] is not None]
    out: dict[str, Any] = {"warmup_s": warmup_s, "limit_pct": MEMORY_GROWTH_LIMIT * 100}
    if not points:
        return {**out, "pass": False, "verdict": "**FAIL**: no RSS samples"}
    out["start_mib"] = points[0][1]
    out["max_mib"] = max(v for _, v in points)
    after = [(t, v) for t, v in points if t >= warmup_s - 1]
    out["end_mib"] = points[-1][1]
    if len(after) < 3:
        out["pass"] = None
        out["verdict"] = f"n/a: fewer than 3 samples after the {warmup_s:g} s warm-up"
        return out
    t1, v1 = after[0]
    out["at_warmup_t_s"] = t1
    out["at_warmup_mib"] = v1
    growth = (points[-1][1] - v1) / v1
    n = len(after)
    mt = statistics.fmean(t for t, _ in after)
    mv = statistics.fmean(v for _, v in after)
    sxx = sum((t - mt) ** 2 for t, _ in after)
    slope = sum((t - mt) * (v - mv) for t, v in after) / sxx if sxx else 0.0
    out["samples_after_warmup"] = n
    out["growth_pct"] = round(100 * growth, 2)
    out["slope_mib_per_10min"] = round(slope * 600, 2)
    out["pass"] = growth < MEMORY_GROWTH_LIMIT
    word = "PASS" if out["pass"] else "**FAIL**"
    out["verdict"] = (
        f"{word}: RSS {v1:.1f} MiB at {t1:g} s, {points[-1][1]:.1f} MiB at the end "
        f"({out['growth_pct']:+.2f} %, limit +{MEMORY_GROWTH_LIMIT * 100:g} %); "
        f"slope {out['slope_mib_per_10min']:+.2f} MiB per 10 min over {n} samples"
    )
    return out


def outcome_table(load: Load) -> list[dict[str, Any]]:
    """Per traffic class: counts of each outcome, which ones the configuration allows."""
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        mine = [r for r in load.results if r.kind == kind.name]
        counts = Counter(r.outcome for r in mine)
        lat = [r.latency_s * 1000 for r in mine if r.status]
        unexpected = {o: c for o, c in counts.items() if o not in kind.expect}
        rows.append(
            {
                "kind": kind.name,
                "model": kind.model,
                "what": kind.what,
                "n": len(mine),
                "streamed": sum(1 for r in mine if r.stream),
                "outcomes": dict(counts.most_common()),
                "unexpected": unexpected,
                "p50_ms": round(pctl(lat, 50) or 0, 1),
                "p99_ms": round(pctl(lat, 99) or 0, 1),
                "max_ms": round(max(lat), 1) if lat else None,
            }
        )
    return rows
