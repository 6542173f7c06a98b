"""`trimtab apply` with an `slos:` section, and `trimtab slo status`, against a running
gateway."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Table, func, select

from tests.cli import support
from tests.cli.support import SLOS, write
from tests.support import ADMIN_KEY, OPERATOR_KEY, ROUTES, VIEWER_KEY, Running
from trimtab.stats.proportions import wilson_interval
from trimtab.store.tables import routes, slos
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key, columns=250)


def _count(running: Running, table: Table) -> int:
    with running.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _lines(out: str, slo: str) -> list[str]:
    """The SLO's row of the status table: its first line and the two below it."""
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith(slo + " "))
    return lines[i : i + 3]


def test_one_file_with_routes_and_slos(running: Running, tmp_path: Path) -> None:
    file = write(tmp_path, ROUTES + SLOS)
    code, out = trimtab(running, "apply", "-f", file, "-m", "launch")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith("support-answer: created v1 (new route; stable v1; ")
    assert lines[1].startswith("s-availability (SLO): created (")
    assert lines[2].startswith("s-latency (SLO): created (")
    # the same file again changes nothing; a file of SLOs alone applies them alone
    code, out = trimtab(running, "apply", "-f", file, "-m", "again")
    assert out.strip().splitlines()[1:] == [
        "s-availability (SLO): unchanged",
        "s-latency (SLO): unchanged",
    ]
    only = write(tmp_path, SLOS.replace("0.9\n", "0.95\n"), "slos.yaml")
    code, out = trimtab(running, "apply", "-f", only, "-m", "tighter")
    assert code == 0, out
    assert out.strip().splitlines() == [
        "s-availability (SLO): unchanged",
        f"s-latency (SLO): updated ({out.split('updated (')[1][:12]})",
    ]


def test_a_bad_slos_section_applies_nothing(running: Running, tmp_path: Path) -> None:
    bad = ROUTES + SLOS.replace("0.99", "1.5").replace("kind: latency, ", "kind: latency, x: 1, ")
    file = write(tmp_path, bad)
    code, out = trimtab(running, "apply", "-f", file, "-m", "launch")
    assert code == 1
    assert f"{file}: 2 problem(s), nothing was applied" in out
    assert f"{file}: slos.s-availability.objective: Input should be less than 1" in out
    assert f"{file}: slos.s-latency.sli.x: unknown key" in out
    assert _count(running, routes) == 0 and _count(running, slos) == 0
    # the server's own check: a route that does not exist
    file = write(tmp_path, SLOS.replace("support-answer", "nope"), "slos.yaml")
    code, out = trimtab(running, "apply", "-f", file, "-m", "launch")
    assert code == 1
    assert f"{file}: 2 problem(s), no SLO was changed" in out
    assert f"{file}: slos.s-latency.route: unknown route 'nope'" in out


def test_a_routes_file_applies_as_before(running: Running, tmp_path: Path) -> None:
    code, out = trimtab(running, "apply", "-f", write(tmp_path, ROUTES + "bogus: 1\n"), "-m", "x")
    assert code == 1
    assert "bogus: unknown key" in out


def test_slo_status(running: Running, tmp_path: Path) -> None:
    code, out = trimtab(running, "slo", "status")
    assert (code, out.strip()) == (0, "no SLOs")
    code, out = trimtab(running, "apply", "-f", write(tmp_path, ROUTES + SLOS), "-m", "launch")
    assert code == 0, out
    code, out = trimtab(running, "slo", "status", api_key=VIEWER_KEY)
    assert code == 0, out
    avail = _lines(out, "s-availability")
    assert "availability        no data       99 %         0/0  no data  1h - / 5m -" in avail[0]
    assert "page >14.4x: too little data (< 10; 0)" in avail[0]
    assert "ticket >1x: too little data (< 100; 0)" in avail[2]
    now = time.time()
    TelemetryStore(running.engine).write(
        [
            RequestRecord(
                id=f"req_cli_{i}",
                started_at=now - 30 - i,
                api="openai",
                operation="chat",
                tenant="acme",
                route="support-answer",
                status_code=502 if i < 40 else 200,
                duration_ms=100.0,
            )
            for i in range(200)
        ]
    )
    code, out = trimtab(running, "slo", "status", "--route", "support-answer")
    assert code == 0, out
    avail = _lines(out, "s-availability")
    # 40 bad of 200 where 2 were allowed: -1,900 % of the budget left
    cells = avail[0].split()
    assert cells[4:12] == ["availability", "80", "%", "99", "%", "160/200", "-1.9e+03", "%"]
    assert "1h 20 / 5m 20" in avail[0]
    assert "page >14.4x: FIRING" in avail[0]
    # the verdict's evidence: the long window's burn, its Wilson interval, its sample size
    low, high = (x / 0.01 for x in wilson_interval(40, 200, 0.95))
    assert f"(1h: 20, 95 % {low:.3g}-{high:.3g}, n=200)" in avail[0]
    assert "ticket >1x: firing" in avail[2]
    assert "note: latency from the rollups' DDSketch bins" in out
    code, out = trimtab(running, "slo", "status", "--route", "other")
    assert out.strip() == "no SLOs on route 'other'"
    code, out = trimtab(running, "slo", "status", api_key=ADMIN_KEY)
    assert code == 0 and "no SLOs" not in out  # an admin reads every tenant's
