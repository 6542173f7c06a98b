"""Incidents in the console, in headless Chromium against a real `trimtab serve`: open one
and read its timeline; note, acknowledge and resolve one, each with its audit row."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.support import ADMIN_KEY, GLOBEX_VIEWER_KEY, OPERATOR_KEY, VIEWER_KEY, auth
from tests.web.conftest import SignIn
from tests.web.screenshots import shot
from tests.web.support import Console


def test_open_an_incident_and_read_its_timeline(sign_in: SignIn, shots: Path) -> None:
    page = sign_in(OPERATOR_KEY)
    page.goto("/ui/incidents")
    table = page.get_by_test_id("incidents")
    expect(table).to_contain_text("web-answer")
    table.locator("tbody a").first.click()
    expect(page.get_by_test_id("incident")).to_contain_text("web-answer")
    expect(page.get_by_test_id("incident-timeline")).to_contain_text("a customer saw a rude answer")
    shot(page, shots, "incident")
    other = sign_in(GLOBEX_VIEWER_KEY)
    other.goto("/ui/incidents")
    expect(other.get_by_test_id("incidents").locator("tbody a")).to_have_count(0)
    other.goto(page.url.replace(page.url.split("/ui")[0], ""))
    expect(other.get_by_test_id("error")).to_contain_text("no incident")


def test_note_acknowledge_and_resolve_an_incident(
    sign_in: SignIn, console: Console, shots: Path
) -> None:
    opened = httpx.post(
        console.url + "/api/incidents", headers=auth(OPERATOR_KEY),
        json={"type": "quality_regression", "routes": ["web-answer"], "title": "answers wander",
              "message": "answers drift off topic"},
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    incident = opened.json()["id"]
    viewer = sign_in(VIEWER_KEY)
    viewer.goto(f"/ui/incidents/{incident}")
    expect(viewer.get_by_test_id("incident")).to_contain_text("web-answer")
    expect(viewer.get_by_test_id("incident-actions")).to_have_count(0)
    page = sign_in(OPERATOR_KEY)
    page.goto(f"/ui/incidents/{incident}")
    note = page.get_by_test_id("note-form")
    note.get_by_label("Note", exact=True).fill("the v2 prompt drops the topic variable")
    note.get_by_label("I confirm: add this note").check()
    note.get_by_role("button", name="Add note").click()
    timeline = page.get_by_test_id("incident-timeline")
    expect(timeline).to_contain_text("the v2 prompt drops the topic variable")
    ack = page.get_by_test_id("move-acknowledge")
    ack.get_by_label("Message").fill("on it")
    ack.get_by_label("I confirm: acknowledge this incident").check()
    ack.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("move-acknowledge")).to_have_count(0)  # once only
    expect(timeline).to_contain_text("on it")
    shot(page, shots, "incident-actions")
    resolve = page.get_by_test_id("move-resolve")
    resolve.get_by_label("Message").fill("rolled back to v1")
    resolve.get_by_label("I confirm: resolve this incident").check()
    resolve.get_by_role("button", name="Resolve").click()
    expect(page.locator("h1 .badge")).to_have_text("resolved")
    expect(page.get_by_test_id("move-reopen")).to_have_count(1)
    expect(page.get_by_test_id("move-resolve")).to_have_count(0)
    now = httpx.get(f"{console.url}/api/incidents/{incident}", headers=auth(OPERATOR_KEY)).json()
    assert now["state"] == "resolved"
    assert now["acknowledged_at"] is not None and now["resolved_at"] is not None
    audit = httpx.get(
        console.url + f"/api/audit?target={incident}", headers=auth(ADMIN_KEY)
    ).json()["data"]
    done = {(e["action"], e["actor"]) for e in audit}
    for action in ("incident.note", "incident.acknowledge", "incident.resolve"):
        assert (action, "ml@acme") in done, (action, done)
    resolved = next(e for e in audit if e["action"] == "incident.resolve")
    assert resolved["detail"]["message"] == "rolled back to v1"
    assert resolved["remote_addr"] == "127.0.0.1" and resolved["request_id"].startswith("req_")
