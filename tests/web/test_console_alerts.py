"""Alerts in the console, in headless Chromium against a real `trimtab serve`: acknowledge
one, create a silence and expire it, each with its audit row."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.support import ADMIN_KEY, GLOBEX_VIEWER_KEY, OPERATOR_KEY, VIEWER_KEY, auth, wait_for
from tests.web.conftest import SignIn
from tests.web.screenshots import shot
from tests.web.support import Console


def test_acknowledge_an_alert(sign_in: SignIn, console: Console, shots: Path) -> None:
    alerts = console.url + "/api/alerts"
    wait_for(lambda: httpx.get(alerts, headers=auth(ADMIN_KEY)).json()["data"])
    alert = httpx.get(alerts, headers=auth(ADMIN_KEY)).json()["data"][0]
    viewer = sign_in(VIEWER_KEY)
    viewer.goto("/ui/alerts")
    expect(viewer.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/alerts")
    row = page.locator(f"tr[data-alert='{alert['id']}']")
    expect(row.get_by_test_id("alert-state")).to_have_text("firing")
    shot(page, shots, "alerts")
    row.get_by_label("Message").fill("looking at the alarm feature's spend")
    row.get_by_label("sure").check()
    row.get_by_role("button", name="Acknowledge").click()
    expect(row.get_by_test_id("alert-state")).to_contain_text("acknowledged")
    expect(row.get_by_test_id("alert-state")).to_contain_text("by ops@acme")
    after = httpx.get(f"{alerts}/{alert['id']}", headers=auth(ADMIN_KEY)).json()
    assert after["state"] == "acknowledged"
    audit = httpx.get(
        console.url + f"/api/audit?action=alert.ack&target={alert['id']}",
        headers=auth(ADMIN_KEY),
    ).json()["data"]
    assert [e["detail"]["message"] for e in audit] == ["looking at the alarm feature's spend"]


def test_create_and_expire_a_silence(sign_in: SignIn, console: Console, shots: Path) -> None:
    viewer = sign_in(VIEWER_KEY)
    viewer.goto("/ui/alerts")
    expect(viewer.get_by_test_id("silence-form")).to_have_count(0)
    page = sign_in(OPERATOR_KEY)  # acme's operator: its silence is confined to acme
    page.goto("/ui/alerts")
    form = page.get_by_test_id("silence-form")
    form.get_by_label("Matchers").fill("feature=quiet-test\nseverity=ticket")
    form.get_by_label("Duration").fill("3h")
    form.get_by_label("Comment").fill("load test tonight")
    form.get_by_role("button", name="Silence").click()  # unconfirmed: nothing is made
    expect(page.get_by_test_id("silences")).not_to_contain_text("load test tonight")
    form.get_by_label("I confirm: silence these alerts").check()
    form.get_by_role("button", name="Silence").click()
    expect(page.get_by_test_id("error")).to_have_count(0)
    listed = httpx.get(console.url + "/api/silences", headers=auth(ADMIN_KEY)).json()["data"]
    made = next(s for s in listed if s["comment"] == "load test tonight")
    assert made["matchers"] == ["feature=quiet-test", "severity=ticket", "tenant=acme"]
    assert made["created_by"] == "ml@acme" and made["active"]
    row = page.locator(f"tr[data-silence='{made['id']}']")
    expect(row).to_contain_text("tenant=acme")
    row.scroll_into_view_if_needed()
    shot(page, shots, "silences")
    other = sign_in(GLOBEX_VIEWER_KEY)
    other.goto("/ui/alerts")
    expect(other.get_by_test_id("silences")).not_to_contain_text("load test tonight")
    row.get_by_label("sure").check()
    row.get_by_role("button", name="Expire").click()
    expect(page.locator(f"tr[data-silence='{made['id']}']")).to_have_count(0)
    active = httpx.get(console.url + "/api/silences", headers=auth(ADMIN_KEY)).json()["data"]
    assert made["id"] not in [s["id"] for s in active]
    audit = httpx.get(
        console.url + f"/api/audit?target={made['id']}", headers=auth(ADMIN_KEY)
    ).json()["data"]
    actions = {(e["action"], e["actor"], e["detail"].get("via")) for e in audit}
    assert {
        ("silence.create", "ml@acme", "console"),
        ("silence.delete", "ml@acme", "console"),
    } <= actions
