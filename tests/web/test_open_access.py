"""With no keys configured the console is open, as the API is; forms still need the
session's CSRF token."""

from __future__ import annotations

import re

import httpx

from tests.support import ROUTES, GatewayFactory

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_without_keys_the_console_is_open_and_forms_keep_their_token(
    gateway: GatewayFactory,
) -> None:
    running = gateway()  # no keys: every caller is the open-access admin
    with httpx.Client(base_url=running.url, timeout=30, follow_redirects=False) as c:
        page = c.get("/ui")
        assert page.status_code == 200 and "keys off: open access" in page.text
        assert c.get("/ui/login").headers["location"] == "/ui"  # nothing to sign in to
        applied = c.post("/api/routes/apply", json={"yaml": ROUTES, "message": "m"})
        assert applied.status_code == 200, applied.text
        token = CSRF.search(c.get("/ui/routes/support-answer/rollout").text)
        assert token is not None
        refused = c.post("/ui/admin/keys/create", data={"tenant": "t", "owner": "o"})
        assert refused.status_code == 403 and "CSRF token" in refused.text
        made = c.post(
            "/ui/admin/keys/create",
            data={"csrf": token.group(1), "tenant": "t", "owner": "o", "role": "viewer"},
        )
        assert made.status_code == 409  # past the token: keys are off, as the API says
        assert "keys are off" in made.text
    with httpx.Client(base_url=running.url, timeout=30) as stranger:
        resp = stranger.post(
            "/ui/admin/keys/create", data={"csrf": token.group(1), "tenant": "t"}
        )  # another browser holds no session: the page's token is not its own
        assert resp.status_code == 403
