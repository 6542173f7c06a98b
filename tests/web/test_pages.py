"""The console over plain HTTP: who may sign in, sessions, CSRF, scoping and errors."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_OPERATOR_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    VIEWER_KEY,
    auth,
    wait_for,
)
from tests.web.support import Console
from trimtab.web.session import COOKIE

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def client(console: Console) -> httpx.Client:
    return httpx.Client(base_url=console.url, follow_redirects=False, timeout=30)


def signed_in(console: Console, key: str) -> tuple[httpx.Client, str]:
    """A client with a session for `key`, and the session's CSRF token."""
    c = client(console)
    form = c.get("/ui/login")
    token = CSRF.search(form.text)
    assert token is not None
    resp = c.post("/ui/login", data={"csrf": token.group(1), "key": key, "next": "/ui"})
    assert resp.status_code == 303 and resp.headers["location"] == "/ui", resp.text
    page = c.get("/ui/routes")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found is not None
    return c, found.group(1)


def test_pages_need_a_session(console: Console) -> None:
    with client(console) as c:
        resp = c.get("/ui/requests?route=web-answer")
        assert resp.status_code == 303
        assert resp.headers["location"] == "/ui/login?next=/ui/requests%3Froute%3Dweb-answer"
        assert c.get("/ui/data/series").status_code == 303


def test_the_session_cookie_is_http_only_lax_and_holds_no_key(console: Console) -> None:
    with client(console) as c:
        token = CSRF.search(c.get("/ui/login").text)
        assert token is not None
        resp = c.post("/ui/login", data={"csrf": token.group(1), "key": VIEWER_KEY})
        cookie = resp.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
        assert VIEWER_KEY not in cookie
        assert c.cookies[COOKIE].count(".") == 1


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        (APP_KEY, 403, "a key with role &#39;app&#39; may not read the console"),
        ("tt-nope", 401, "invalid API key"),
        ("", 401, "enter an API key"),
    ],
)
def test_sign_in_refuses(console: Console, key: str, status: int, message: str) -> None:
    with client(console) as c:
        token = CSRF.search(c.get("/ui/login").text)
        assert token is not None
        resp = c.post("/ui/login", data={"csrf": token.group(1), "key": key})
        assert resp.status_code == status
        assert message in resp.text
        assert c.get("/ui").status_code == 303  # still signed out


def test_sign_in_needs_the_forms_token(console: Console) -> None:
    with client(console) as c:
        c.get("/ui/login")
        resp = c.post("/ui/login", data={"csrf": "forged", "key": ADMIN_KEY})
        assert resp.status_code == 403
        assert "the sign-in form had expired" in resp.text


def test_a_post_without_the_sessions_csrf_token_is_refused(console: Console) -> None:
    c, token = signed_in(console, OPERATOR_KEY)
    other, other_token = signed_in(console, OPERATOR_KEY)
    body = {"reason": "x", "confirm": "yes", "to": "1"}
    for data in (body, {**body, "csrf": other_token}):
        resp = c.post("/ui/routes/web-answer/rollout/rollback", data=data)
        assert resp.status_code == 403
        assert "CSRF token is missing or belongs to another session" in resp.text
        assert re.search(r"Request id <code>req_[0-9a-f]+</code>", resp.text)
    assert token != other_token
    c.close()
    other.close()


def test_a_forged_cookie_is_no_session(console: Console) -> None:
    c, _ = signed_in(console, ADMIN_KEY)
    payload, _, mac = c.cookies[COOKIE].partition(".")
    c.cookies.clear()
    c.cookies.set(COOKIE, payload + "." + mac[::-1], path="/ui")
    assert c.get("/ui").status_code == 303
    c.close()


def test_a_revoked_keys_session_ends(console: Console) -> None:
    made = httpx.post(
        console.url + "/api/keys",
        json={"tenant": "acme", "role": "viewer", "owner": "short-lived"},
        headers=auth(ADMIN_KEY),
    ).json()
    c, _ = signed_in(console, made["key"])
    assert c.get("/ui/requests").status_code == 200
    revoked = httpx.delete(console.url + f"/api/keys/{made['id']}", headers=auth(ADMIN_KEY))
    assert revoked.status_code == 200
    resp = c.get("/ui/requests")
    assert resp.status_code == 303
    assert "API%20key%20revoked" in resp.headers["location"]
    c.close()


def test_a_viewer_may_not_act_even_with_a_valid_token(console: Console) -> None:
    c, token = signed_in(console, VIEWER_KEY)
    resp = c.post(
        "/ui/routes/web-answer/rollout/rollback",
        data={"csrf": token, "reason": "x", "confirm": "yes"},
    )
    assert resp.status_code == 403
    assert "only a key with role &#39;operator&#39; or &#39;admin&#39; may roll back" in resp.text
    create = c.post("/ui/admin/keys/create", data={"csrf": token, "tenant": "acme"})
    assert create.status_code == 403
    assert c.get("/ui/admin/audit").status_code == 403
    c.close()


def test_another_tenants_route_is_missing(console: Console) -> None:
    c, token = signed_in(console, GLOBEX_OPERATOR_KEY)
    assert c.get("/ui/routes/web-answer").status_code == 404
    resp = c.post(
        "/ui/routes/web-answer/rollout/pause",
        data={"csrf": token, "reason": "x", "confirm": "yes"},
    )
    assert resp.status_code == 404
    assert "no route named &#39;web-answer&#39;" in resp.text
    c.close()


def test_the_series_follows_the_tenant_and_answers_errors_in_json(console: Console) -> None:
    admin, _ = signed_in(console, ADMIN_KEY)
    globex, _ = signed_in(console, GLOBEX_VIEWER_KEY)
    everyone = admin.get("/ui/data/series?window=1h").json()
    theirs = globex.get("/ui/data/series?window=1h").json()
    assert theirs["tenant"] == "globex" and everyone["tenant"] is None
    assert sum(theirs["requests"]) == 3
    assert sum(everyone["requests"]) > sum(theirs["requests"])
    bad = globex.get("/ui/data/series?window=2h")
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["param"] == "window" and "'2h' is not one of" in error["message"]
    assert bad.headers["x-trimtab-request-id"].startswith("req_")
    assert globex.get("/ui/data/series?tenant=acme").status_code == 403
    admin.close()
    globex.close()


def test_the_explorer_pages_by_cursor(console: Console) -> None:
    c, _ = signed_in(console, ADMIN_KEY)
    ids: list[str] = []
    url = "/ui/requests?limit=4&tenant=acme"
    pages = 0
    while url:
        resp = c.get(url)
        assert resp.status_code == 200
        ids += re.findall(r'<a href="/ui/requests/(req_[0-9a-f]+)">', resp.text)
        more = re.search(r'rel="next" data-testid="next-page" href="([^"]+)"', resp.text)
        url = more.group(1).replace("&amp;", "&") if more else ""
        pages += 1
    api = httpx.get(
        console.url + "/api/requests?limit=200&tenant=acme", headers=auth(ADMIN_KEY)
    ).json()["data"]
    assert ids == [r["id"] for r in api]  # the same rows, in the same order
    assert pages == -(-len(ids) // 4) and pages > 1  # a cursor only when more rows exist
    assert c.get("/ui/requests?cursor=nope").status_code == 400
    c.close()


def test_pages_carry_security_headers(console: Console) -> None:
    c, _ = signed_in(console, VIEWER_KEY)
    resp = c.get("/ui")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-trimtab-request-id"].startswith("req_")
    assert c.get("/ui/static/uplot/uPlot.iife.min.js").status_code == 200
    c.close()


def test_the_overview_shows_each_routes_slo_and_budget(console: Console) -> None:
    c, _ = signed_in(console, ADMIN_KEY)
    page = c.get("/ui").text
    row = page.split('href="/ui/routes/web-answer', 1)[1].split("</tr>", 1)[0]
    assert "web-availability: meeting, 100 % budget left" in row
    assert "of $5.00" in row  # the route's daily budget
    c.close()
    globex, _ = signed_in(console, GLOBEX_VIEWER_KEY)
    theirs = globex.get("/ui").text
    assert "web-availability" not in theirs  # acme's SLO
    assert "No firing alerts, no open incidents." in theirs  # acme's incident is not theirs
    globex.close()


def test_the_overview_starts_with_open_incidents(console: Console) -> None:
    c, _ = signed_in(console, OPERATOR_KEY)
    top = c.get("/ui").text.split('data-testid="attention"', 1)[1].split("</section>", 1)[0]
    assert "1 open incident: " in top and "toxic output on web-answer" in top
    c.close()


def test_only_an_operator_who_sees_an_alert_may_acknowledge_it(console: Console) -> None:
    alerts = console.url + "/api/alerts"
    wait_for(lambda: httpx.get(alerts, headers=auth(ADMIN_KEY)).json()["data"])
    alert_id = httpx.get(alerts, headers=auth(ADMIN_KEY)).json()["data"][0]["id"]
    body = {"message": "mine", "confirm": "yes"}
    admin, _ = signed_in(console, ADMIN_KEY)
    assert f'data-alert="{alert_id}"' in admin.get("/ui/alerts?state=all").text
    admin.close()
    viewer, token = signed_in(console, VIEWER_KEY)
    resp = viewer.post(f"/ui/alerts/{alert_id}/ack", data={**body, "csrf": token})
    assert resp.status_code == 403
    assert "may acknowledge alerts" in resp.text
    viewer.close()
    globex, token = signed_in(console, GLOBEX_OPERATOR_KEY)
    assert f'data-alert="{alert_id}"' not in globex.get("/ui/alerts?state=all").text
    resp = globex.post(f"/ui/alerts/{alert_id}/ack", data={**body, "csrf": token})
    assert resp.status_code == 404  # another tenant's alert is a missing one
    globex.close()


def test_signing_out_ends_the_session(console: Console) -> None:
    c, token = signed_in(console, VIEWER_KEY)
    assert c.post("/ui/logout", data={"csrf": "not it"}).status_code == 303
    assert c.get("/ui").status_code == 200  # a foreign token does not sign out
    resp = c.post("/ui/logout", data={"csrf": token})
    assert resp.status_code == 303 and resp.headers["location"] == "/ui/login"
    assert COOKIE not in c.cookies
    assert c.get("/ui").status_code == 303
    c.close()


def test_a_tenants_silence_stays_in_its_tenant(console: Console) -> None:
    acme, token = signed_in(console, OPERATOR_KEY)
    body = {"csrf": token, "comment": "quiet", "duration": "1h", "confirm": "yes"}
    other = acme.post("/ui/alerts/silences", data={**body, "matchers": "tenant=globex"})
    assert other.status_code == 400 and "silences only its own" in other.text
    bad = acme.post("/ui/alerts/silences", data={**body, "matchers": "route=x", "duration": "1y"})
    assert bad.status_code == 400 and "&#39;duration&#39; must be like 30m" in bad.text
    made = acme.post("/ui/alerts/silences", data={**body, "matchers": "route=pages-test"})
    assert made.status_code == 303, made.text
    listed = httpx.get(console.url + "/api/silences", headers=auth(ADMIN_KEY)).json()["data"]
    silence = next(s for s in listed if s["matchers"] == ["route=pages-test", "tenant=acme"])
    globex, globex_token = signed_in(console, GLOBEX_OPERATOR_KEY)
    assert "route=pages-test" not in globex.get("/ui/alerts").text
    expire = {"csrf": globex_token, "confirm": "yes"}
    resp = globex.post(f"/ui/alerts/silences/{silence['id']}/expire", data=expire)
    assert resp.status_code == 404  # another tenant's silence is missing, as in the API
    viewer, viewer_token = signed_in(console, VIEWER_KEY)
    resp = viewer.post(
        f"/ui/alerts/silences/{silence['id']}/expire", data={"csrf": viewer_token, "confirm": "yes"}
    )
    assert resp.status_code == 403
    done = acme.post(f"/ui/alerts/silences/{silence['id']}/expire", data={"csrf": token,
                     "confirm": "yes"})  # fmt: skip
    assert done.status_code == 303
    again = acme.post(f"/ui/alerts/silences/{silence['id']}/expire", data={"csrf": token,
                      "confirm": "yes"})  # fmt: skip
    assert again.status_code == 409 and "already ended" in again.text


def test_only_an_operator_of_its_tenant_may_change_an_incident(console: Console) -> None:
    opened = httpx.post(
        console.url + "/api/incidents", headers=auth(OPERATOR_KEY),
        json={"type": "vendor_outage", "routes": ["web-answer"], "message": "pages test"},
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    incident = opened.json()["id"]
    body = {"message": "x", "confirm": "yes"}
    viewer, token = signed_in(console, VIEWER_KEY)
    assert (
        viewer.post(f"/ui/incidents/{incident}/note", data={**body, "csrf": token}).status_code
        == 403
    )
    globex, token = signed_in(console, GLOBEX_OPERATOR_KEY)
    resp = globex.post(f"/ui/incidents/{incident}/resolve", data={**body, "csrf": token})
    assert resp.status_code == 404
    acme, token = signed_in(console, OPERATOR_KEY)
    close = acme.post(f"/ui/incidents/{incident}/close", data={**body, "csrf": token})
    assert close.status_code == 409  # open: closing is refused, the store says why
    unknown = acme.post(f"/ui/incidents/{incident}/explode", data={**body, "csrf": token})
    assert unknown.status_code == 404
    unconfirmed = acme.post(
        f"/ui/incidents/{incident}/resolve", data={"csrf": token, "message": "x"}
    )
    assert unconfirmed.status_code == 400
    assert (
        acme.post(f"/ui/incidents/{incident}/resolve", data={**body, "csrf": token}).status_code
        == 303
    )
    state = httpx.get(f"{console.url}/api/incidents/{incident}", headers=auth(OPERATOR_KEY)).json()
    assert state["state"] == "resolved"


def test_only_an_operator_of_its_tenant_may_add_a_request_to_a_dataset(console: Console) -> None:
    def newest(query: str) -> str:
        rows = httpx.get(f"{console.url}/api/requests?limit=1&{query}", headers=auth(ADMIN_KEY))
        return str(rows.json()["data"][0]["id"])

    routed, plain = newest("route=web-answer"), newest("user=long")
    viewer, token = signed_in(console, VIEWER_KEY)
    body = {"dataset": "pages-set"}
    resp = viewer.post(f"/ui/requests/{routed}/dataset", data={**body, "csrf": token})
    assert resp.status_code == 403
    globex, token = signed_in(console, GLOBEX_OPERATOR_KEY)
    resp = globex.post(f"/ui/requests/{routed}/dataset", data={**body, "csrf": token})
    assert resp.status_code == 404  # another tenant's request is missing
    acme, token = signed_in(console, OPERATOR_KEY)
    bad = acme.post(f"/ui/requests/{routed}/dataset", data={"dataset": "No Good", "csrf": token})
    assert bad.status_code == 400 and "invalid dataset name" in bad.text
    resp = acme.post(f"/ui/requests/{plain}/dataset", data={**body, "csrf": token})
    assert resp.status_code == 400 and "only a route&#39;s request" in resp.text
    resp = acme.post(f"/ui/requests/{routed}/dataset", data={**body, "csrf": token})
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/ui/requests/{routed}?dataset=pages-set&version=1&added=1"
    made = httpx.get(f"{console.url}/api/datasets/pages-set/versions/1", headers=auth(OPERATOR_KEY))
    assert [i["metadata"]["request_id"] for i in made.json()["data"]] == [routed]
