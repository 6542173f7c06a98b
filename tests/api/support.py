"""What several API tests send: an admin's headers and a one-route apply body."""

from __future__ import annotations

from tests.support import ADMIN_KEY

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
ROUTES = {
    "r1": {
        "owner": "ops@acme",
        "risk_tier": 0,
        "version": {"model": "gpt-mock", "messages": [{"role": "user", "content": "{{q}}"}]},
    }
}
