"""The costs page in headless Chromium against a real `trimtab serve`: each budget's spend
forecast to the end of its period, and the unit economics per route, feature and tenant,
the same figures /api/costs/forecast and /api/costs/economics give."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support import ADMIN_KEY, auth
from tests.web.conftest import SignIn
from tests.web.support import Console
from trimtab.store.engine import make_engine
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore
from trimtab.web.render import usd

DAY = 86400.0
EN_DASH = "\u2013"  # the page's "none" and its interval's separator


def _shown(value: float) -> Any:
    """``value`` as the page may show it a moment later: within a part in a thousand, and
    within the rounding of ``usd`` (six decimals under a cent, else two)."""
    return pytest.approx(value, rel=1e-3, abs=1e-6 if abs(value) < 0.01 else 0.005)


def _dollars(text: str) -> list[float]:
    """The dollar amounts in ``text``, as ``usd`` writes them."""
    return [float(m.replace(",", "")) for m in re.findall(r"\$([\d,]+(?:\.\d+)?)", text)]


def _record(n: int, at: float, **extra: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": f"req_c057{n:012x}", "started_at": at, "api": "openai", "operation": "chat",
        "tenant": "acme", "request_model": "gpt-mock", "route": "web-answer", "version": "1",
        "feature": "checkout", "status_code": 200, "duration_ms": 120.0, "input_tokens": 300,
        "output_tokens": 100, "cost_usd": 0.01,
    }  # fmt: skip
    fields.update(extra)
    return RequestRecord(**fields)


def _history(console: Console) -> None:
    """Five complete days of rising spend before today on the route with a daily budget (1
    to 5 requests a day), and a failed checkout request outside any route, written into the
    served store through the real TelemetryStore (rows and rollups, as its writer does)."""
    now = time.time()
    records: list[RequestRecord] = []
    for d in range(1, 6):  # rising: 1 request five days ago .. 5 yesterday, one more 3 ago
        for j in range(6 - d + (d == 3)):  # two requests of each day in one session
            records.append(_record(len(records), now - d * DAY + j, session=f"s{d}-{j // 2}"))
    records.append(
        _record(len(records), now - 2 * DAY, route=None, version=None, status_code=500,
                output_tokens=0, cost_usd=0.004)
    )  # fmt: skip
    engine = make_engine(f"sqlite:///{console.folder}/trimtab.db")
    try:
        TelemetryStore(engine).write(records)
    finally:
        engine.dispose()


def _api(console: Console, path: str) -> Any:
    resp = httpx.get(console.url + path, headers=auth(ADMIN_KEY), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_the_forecast_against_each_budget_and_the_unit_economics(
    sign_in: SignIn, console: Console, shots: Path
) -> None:
    _history(console)
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/costs")
    expect(page.locator("h1")).to_have_text("Costs")

    forecasts = {f["scope"]: f for f in _api(console, "/api/costs/forecast")["data"]}
    route = forecasts["route:web-answer"]
    assert route["status"] == "ok" and route["days"] >= 5, route
    row = page.get_by_test_id("forecasts").locator("tr[data-scope='route:web-answer']")
    # the page and the API each project to the end of the period from their own "now", a
    # moment apart: the same figures to within a part in a thousand, not to the last digit
    expect(row.get_by_test_id("projected")).to_contain_text("$")
    projected = _dollars(row.get_by_test_id("projected").inner_text())
    assert projected == [_shown(route["projected_usd"])], projected
    expect(row).to_contain_text(f" {EN_DASH} $")
    interval = re.search(rf"(\$[\d,.]+) {EN_DASH} (\$[\d,.]+)", row.inner_text())
    assert interval is not None, row.inner_text()
    assert _dollars(interval.group(0)) == [_shown(route["low_usd"]), _shown(route["high_usd"])]
    expect(row).to_contain_text(usd(route["limit_usd"]))
    expect(row).to_contain_text(f"{route['days']} days")
    alarm = page.get_by_test_id("forecasts").locator("tr[data-scope='feature:alarm']")
    expect(alarm.get_by_test_id("projected")).to_contain_text("too little data")

    for group in ("route", "feature", "tenant"):
        api = _api(console, f"/api/costs/economics?group_by={group}&window=30d")["groups"]
        table = page.get_by_test_id(f"economics-{group}")
        expect(table.locator("tbody tr")).to_have_count(len(api))
        for entry in api:
            cells = table.locator("tbody tr").filter(
                has=page.locator(f"td:first-child:text-is('{entry[group] or EN_DASH}')")
            )
            expect(cells).to_have_count(1)
            for key in ("cost_per_request_usd", "cost_per_successful_request_usd",
                        "cost_per_1k_tokens_usd", "cost_per_session_usd"):  # fmt: skip
                if entry[key] is not None:
                    expect(cells).to_contain_text(usd(entry[key]))
    checkout = next(
        e for e in _api(console, "/api/costs/economics?group_by=feature")["groups"]
        if e["feature"] == "checkout"
    )  # fmt: skip
    # 16 requests at $0.01 and a failed one at $0.004: per successful is over the 16
    assert (checkout["requests"], checkout["successful"]) == (17, 16)
    assert abs(checkout["cost_per_successful_request_usd"] - 0.164 / 16) < 1e-9
    # 16 requests in 9 sessions (two a session, each day's odd one alone): exact counts
    assert checkout["sessions"]["estimate"] == 9
    assert abs(checkout["cost_per_session_usd"] - 0.16 / 9) < 1e-9
    header = page.get_by_test_id("economics-feature").locator("thead")
    expect(header).to_contain_text("Per session")
    page.get_by_test_id("forecasts").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "costs-forecast.png"))
