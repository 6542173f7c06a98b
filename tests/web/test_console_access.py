"""Who sees and does what in the console, in headless Chromium against a real `trimtab
serve`: a key shown once and revoked, a viewer without operator buttons, a tenant
without another's rows."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.support import ADMIN_KEY, GLOBEX_VIEWER_KEY, VIEWER_KEY, auth
from tests.web.conftest import SignIn
from tests.web.support import Console


def test_create_a_key_shown_once_and_revoke_it(sign_in: SignIn, console: Console) -> None:
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/admin/keys")
    form = page.get_by_test_id("create-key")
    form.get_by_label("Owner").fill("dashboards@acme")
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text()
    assert key.startswith("tt-") or len(key) >= 20
    reads = console.url + "/api/requests?limit=1"
    assert httpx.get(reads, headers=auth(key)).status_code == 200
    page.goto("/ui/admin/keys")
    expect(page.get_by_test_id("created-key")).to_have_count(0)  # shown once only
    assert key not in page.content()
    key_id = httpx.get(console.url + "/api/keys", headers=auth(key)).json()["data"]
    mine = [k["id"] for k in key_id if k["owner"] == "dashboards@acme"]
    row = page.locator(f"tr[data-key='{mine[0]}']")
    row.get_by_label("sure").check()
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"tr[data-key='{mine[0]}'] [data-testid=key-status]")).to_have_text(
        "revoked"
    )
    assert httpx.get(reads, headers=auth(key)).status_code == 401


def test_a_viewer_sees_no_operator_buttons(sign_in: SignIn) -> None:
    page = sign_in(VIEWER_KEY)
    page.goto("/ui/routes/web-answer/rollout")
    expect(page.locator("h1")).to_have_text("Rollout of web-answer")
    expect(page.get_by_test_id("operator-actions")).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    page.goto("/ui/admin/keys")
    expect(page.get_by_test_id("create-key")).to_have_count(0)
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit")).to_have_count(0)


def test_a_tenant_sees_no_other_tenants_rows(sign_in: SignIn, console: Console) -> None:
    page = sign_in(GLOBEX_VIEWER_KEY)
    page.goto("/ui/requests")
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows).to_have_count(3)
    assert set(rows.locator("td:nth-child(9)").all_inner_texts()) == {"globex"}
    page.goto("/ui")
    expect(page.get_by_test_id("overview")).not_to_contain_text("web-answer")
    page.goto("/ui/routes")
    expect(page.get_by_test_id("routes")).not_to_contain_text("web-answer")
    acme = httpx.get(
        console.url + "/api/requests?limit=1&route=web-answer", headers=auth(ADMIN_KEY)
    ).json()["data"][0]["id"]
    page.goto(f"/ui/requests/{acme}")
    expect(page.get_by_test_id("error")).to_have_text(f"no request with id '{acme}'")
    page.goto("/ui/requests?tenant=acme")
    expect(page.get_by_test_id("error")).to_contain_text("may not read tenant 'acme'")
