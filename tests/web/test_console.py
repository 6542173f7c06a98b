"""The console in headless Chromium against a real `trimtab serve`: every page renders
without a console error, on a desktop and on a phone. The flows an operator's day needs
are tested end to end beside it, in test_console_*.py; they share one server (the
session's `console`) and run in the files' order: the explorer's row counts are taken
before the releases' rollout adds its calls."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.support import ADMIN_KEY
from tests.web.conftest import SignIn
from tests.web.screenshots import shot

PAGES = [
    ("overview", "/ui", "Overview"),
    ("requests", "/ui/requests", "Requests"),
    ("routes", "/ui/routes", "Routes"),
    ("route", "/ui/routes/web-answer", "Route web-answer"),
    ("route-gate", "/ui/routes/gated-answer", "Route gated-answer"),
    ("diff", "/ui/routes/web-answer/diff?from=1&to=2", "web-answer: v1 → v2"),
    ("rollout", "/ui/routes/web-answer/rollout", "Rollout of web-answer"),
    ("evals", "/ui/evals", "Eval runs"),
    ("slos", "/ui/slos", "SLOs"),
    ("costs", "/ui/costs", "Costs"),
    ("incidents", "/ui/incidents", "Incidents"),
    ("keys", "/ui/admin/keys", "API keys"),
    ("audit", "/ui/admin/audit", "Audit log"),
]


def test_every_page_renders_for_an_admin(sign_in: SignIn, shots: Path) -> None:
    login = sign_in(None)
    expect(login.locator("h1")).to_have_text("Sign in")
    shot(login, shots, "login")
    page = sign_in(ADMIN_KEY)
    for name, path, heading in PAGES:
        page.goto(path)
        expect(page.locator("h1")).to_have_text(heading)
        if name == "overview":
            expect(page.locator(".chart canvas")).to_have_count(4)  # uPlot drew each chart
            expect(page.get_by_test_id("overview")).to_contain_text("web-answer")
        if name == "slos":
            expect(page.locator(".chart canvas")).to_have_count(1)
        shot(page, shots, name)
    # times are shown in the viewer's zone (the context's: Asia/Tokyo) by the page's script
    page.goto("/ui/requests")
    first = page.locator("time").first
    expect(first).to_contain_text("GMT+9")
    assert (first.get_attribute("title") or "").endswith(" UTC")


def test_a_phone_sees_the_overview(sign_in: SignIn, shots: Path) -> None:
    page = sign_in(ADMIN_KEY)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/ui")
    expect(page.locator("h1")).to_have_text("Overview")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px)"
    shot(page, shots, "overview-phone")
