"""Did trimtab record every request it answered: the API's counts, the SQLite rows and
the spill files, after a graceful stop."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from gateway_bench.processes import Target, http_request, stop_process
from gateway_bench.run_state import Run
from gateway_bench.settings import W2, is_trimtab, log
from gateway_bench.wire import headers_for


def find_counts(obj: Any, path: str = "") -> list[tuple[str, int]]:
    """All integer fields that look like request counts, with their JSON path."""
    out: list[tuple[str, int]] = []
    names = {"count", "requests", "request_count", "n", "total", "total_requests", "calls"}
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, int) and not isinstance(v, bool) and str(k).lower() in names:
                out.append((p, v))
            else:
                out.extend(find_counts(v, p))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(find_counts(v, f"{path}[{i}]"))
    return out


def api_summary(t: Target) -> dict[str, Any]:
    url = f"{t.base_url.removesuffix('/v1')}/api/metrics/summary?window=1h&group_by=model"
    try:
        status, _, body = http_request("GET", url, headers=headers_for(t), timeout=30)
    except OSError as e:
        return {"url": url, "error": repr(e)}
    res: dict[str, Any] = {"url": url, "status": status}
    if status != 200:
        res["body"] = body[:500].decode(errors="replace")
        return res
    try:
        obj = json.loads(body)
    except ValueError:
        res["body"] = body[:500].decode(errors="replace")
        return res
    counts = find_counts(obj)
    res["count_fields"] = dict(counts)
    res["raw"] = obj if len(body) < 4000 else body[:4000].decode(errors="replace")
    return res


def sqlite_count(db: Path) -> dict[str, Any]:
    if not db.exists():
        return {"db": str(db), "error": "database file does not exist"}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            (n,) = con.execute("SELECT count(*) FROM requests").fetchone()
            cols = [r[1] for r in con.execute("PRAGMA table_info(requests)")]
        finally:
            con.close()
    except sqlite3.Error as e:
        return {"db": str(db), "error": repr(e)}
    return {"db": str(db), "rows": int(n), "columns": cols}


RECORDING_KEYS = {"trimtab": "recording", W2: "recording_w2"}  # where each goes in the json


STOP_GRACE_S = {"trimtab": 30.0, W2: 90.0}  # the supervisor stops its workers one by one


def recording_verdict(sent: int, completed: int, rows: int | None, error: str | None) -> str:
    """The recording check's verdict ("PASS: ..." or "**FAIL**: ...") from the requests sent
    to a gateway, those that completed, and the rows its store holds after its stop.

    A request wrk had written when its run ended, but whose answer it did not wait for, may
    or may not have been served: rows between completed and sent pass."""
    if rows is None:
        return f"**FAIL**: could not count rows ({error})"
    if rows == sent:
        return "PASS: every request sent was recorded"
    if completed <= rows <= sent:
        return (
            f"PASS: every completed request recorded ({sent - rows} that wrk cut off "
            "at the end of a run were not)"
        )
    return f"**FAIL**: {rows} rows for {completed} completed / {sent} sent"


def spill_files(workdir: Path) -> list[Path]:
    """A gateway's spill files: the single process's and each worker's (spill-wN.jsonl)."""
    return sorted(p for p in workdir.glob("spill*.jsonl") if p.is_file())


def phase_recording(run: Run) -> None:
    """Stop each trimtab target gracefully and compare its recorded rows with what we sent."""
    for tt in run.targets:
        if is_trimtab(tt.name):
            run.res[RECORDING_KEYS[tt.name]] = check_recording(run, tt)


def check_recording(run: Run, tt: Target) -> dict[str, Any]:
    """SIGTERM (the supervisor, for trimtab-w2: it stops each worker with its draining
    stop), then count the rows in the target's own SQLite db."""
    assert tt.workdir is not None
    rec: dict[str, Any] = {"target": tt.name, "sent": tt.sent, "completed": tt.completed}
    if tt.proc is not None and tt.proc.poll() is None:
        time.sleep(1.0)
        rec["api"] = api_summary(tt)
        counts = rec["api"].get("count_fields") or {}
        if "total.count" in counts:
            rec["api_count"] = counts["total.count"]
        elif counts:
            rec["api_count"] = max(counts.values())
        grace = STOP_GRACE_S[tt.name]
        rec["stop"] = stop_process(tt.proc, grace)
        log(f"{tt.name} stopped: {rec['stop']}")
        if rec["stop"].get("stopped") != "SIGTERM":
            run.problem(
                f"{tt.name} did not stop on SIGTERM within {grace:g} s: {rec['stop']}", hard=True
            )
        elif rec["stop"].get("returncode") not in (0, -signal.SIGTERM):
            run.problem(
                f"{tt.name} exited with status {rec['stop']['returncode']} on SIGTERM", hard=False
            )
    else:
        rec["stop"] = {"stopped": "had exited", "returncode": tt.proc and tt.proc.returncode}
        run.problem(f"{tt.name} exited during the run: {rec['stop']}", hard=True)
    rec["sqlite"] = sqlite_count(tt.workdir / "bench.db")
    rec["spill_lines"] = sum(len(f.read_bytes().splitlines()) for f in spill_files(tt.workdir))
    if rec["spill_lines"]:
        run.problem(
            f"{tt.name} left {rec['spill_lines']} records in its spill files after stopping",
            hard=False,
        )
    rows = rec["sqlite"].get("rows")
    rec["db_rows"] = rows
    rec["verdict"] = recording_verdict(tt.sent, tt.completed, rows, rec["sqlite"].get("error"))
    rec["ok"] = rec["verdict"].startswith("PASS")
    log(
        f"{tt.name} recording: sent {tt.sent}, completed {tt.completed}, rows {rows} -> "
        f"{rec['verdict']}"
    )
    if not rec["ok"]:
        run.problem(f"{tt.name} RECORDING MISMATCH: {rec['verdict']}", hard=True)
    return rec
