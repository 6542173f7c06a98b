"""`trimtab slo report`, `trimtab costs forecast` and `trimtab costs economics` against a
running gateway (the figures themselves are tested in tests/slo, tests/policy, tests/api)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.cli import support
from tests.support import OPERATOR_KEY, ROUTE_KEYS, ROUTES, VIEWER_KEY, GatewayFactory, Running
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

SLOS = """
slos:
  s-availability:
    route: support-answer
    sli: {kind: availability}
    objective: 0.99
"""


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str) -> Running:
    budgets = [{"scope": "tenant:*", "period": "month", "usd": 50.0}]
    return gateway(store=sqlite_url, keys=ROUTE_KEYS, budgets=budgets)


def trimtab(running: Running, *args: str, api_key: str = VIEWER_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key, columns=250)


def _write(running: Running, at: float, n: int, **extra: object) -> None:
    TelemetryStore(running.engine).write(
        [
            RequestRecord(
                id=f"req_clirep_{at:.0f}_{i}",
                started_at=at + i,
                api="openai",
                operation="chat",
                tenant="acme",
                route="support-answer",
                feature="faq",
                status_code=502 if i == 0 else 200,
                input_tokens=100,
                output_tokens=100,
                cost_usd=1.0,
                **extra,  # type: ignore[arg-type]
            )
            for i in range(n)
        ]
    )


def test_slo_report(running: Running, tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(ROUTES + SLOS)
    code, out = trimtab(running, "apply", "-f", str(path), "-m", "launch", api_key=OPERATOR_KEY)
    assert code == 0, out
    _write(running, datetime(2026, 11, 10, tzinfo=UTC).timestamp(), 50)
    code, out = trimtab(running, "slo", "report", "--month", "2026-11")
    assert code == 0, out
    assert out.startswith("# SLA report 2026-11\n")
    assert "## support-answer" in out
    assert "| s-availability | availability | 99 % | 98.000 % | missed | 1 of 0.5 (200.0 %) " in out
    assert "| requests | 50 (49 successful) |" in out
    assert "| faq | 50 | 5000 | 5000 | $50.000000 |" in out
    code, out = trimtab(running, "slo", "report", "--month", "2026-11", "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert report["routes"][0]["slos"][0]["good"] == 49
    code, out = trimtab(running, "slo", "report", "--month", "2026-13")
    assert code == 1 and "--month: '2026-13' is not a month: expected YYYY-MM" in out
    code, out = trimtab(running, "slo", "report", "--format", "pdf")
    assert code == 1 and "expected md or json" in out


def test_costs_forecast_and_economics(running: Running) -> None:
    now = time.time()
    for d in range(1, 5):  # four days before today, $10 a day, one session a day
        _write(running, now - d * 86400, 10, session=f"day-{d}")
    code, out = trimtab(running, "costs", "forecast")
    assert code == 0, out
    (row,) = [line for line in out.splitlines() if line.startswith("tenant:acme")]
    assert " month " in row and "$50.00" in row and " line" in row
    # $10 a day for the rest of the month goes over $50 unless the month ends within days
    assert "least squares on the last 28 complete days" in out
    code, out = trimtab(running, "costs", "forecast", "--json")
    (acme,) = json.loads(out)["data"]
    assert acme["status"] == "ok" and acme["days"] >= 4
    assert ("over the month budget of $50.00" in out) == acme["crosses"]

    code, out = trimtab(running, "costs", "economics", "--by", "feature", "--window", "7d")
    assert code == 0, out
    (faq,) = [line.split() for line in out.splitlines() if line.startswith("faq")]
    # 40 requests, 36 successful, $40: $1 a request, $1.11 a successful one, $5 per 1k tokens
    # and 4 sessions (exact at this size; the interval's bounds around 4): $10 a session
    assert faq[:7] == ["faq", "40", "36", "$40.0000", "$1.000000", "$1.111111", "$5.000000"]
    assert faq[7:9] == ["4", "(4-4)"] and faq[9] == "$10.000000"
    assert "note: sessions: distinct session ids, estimated by merging HyperLogLog" in out
    assert "1.62 % relative standard error" in out
    code, out = trimtab(running, "costs", "economics", "--by", "model")
    assert code == 1 and "group_by" in out
