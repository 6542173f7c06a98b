"""The console's pages in a store outage: a 503 page with the message and request id."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support import ADMIN_KEY, KEYS, GatewayFactory

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_pages_answer_an_unreachable_store_with_a_503_page(
    gateway: GatewayFactory, tmp_path: Path
) -> None:
    home = tmp_path / "store"
    running = gateway(store=f"sqlite:///{home}/trimtab.db", keys=KEYS)
    with httpx.Client(base_url=running.url, timeout=30) as c:
        token = CSRF.search(c.get("/ui/login").text)
        assert token is not None
        assert (
            c.post("/ui/login", data={"csrf": token.group(1), "key": ADMIN_KEY}).status_code == 303
        )
        assert c.get("/ui/requests").status_code == 200
        home.rename(tmp_path / "store-gone")  # as tests/api/test_store_outage.py does
        home.write_text("not a directory")
        running.engine.dispose()
        for path in ("/ui/requests", "/ui/routes", "/ui/admin/audit", "/ui/costs"):
            resp = c.get(path)
            assert resp.status_code == 503, (path, resp.text[:300])
            assert resp.headers["content-type"].startswith("text/html")
            assert "the store is unreachable: OperationalError" in resp.text
            rid = resp.headers["x-trimtab-request-id"]
            assert f"Request id <code>{rid}</code>" in resp.text
        series = c.get("/ui/data/series")
        assert series.status_code == 503
        assert series.json()["error"]["code"] == "store_unavailable"
