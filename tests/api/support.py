"""What several API tests send: an admin's headers and a one-route apply body; a
gateway with the shared support route, and an `slos:` file applied to it."""

from __future__ import annotations

from typing import Any

import httpx

from tests import support as base
from tests.support import ADMIN_KEY, GatewayFactory, Running, auth
from trimtab.client import Client

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
ROUTES = {
    "r1": {
        "owner": "ops@acme",
        "risk_tier": 0,
        "version": {"model": "gpt-mock", "messages": [{"role": "user", "content": "{{q}}"}]},
    }
}


def with_support_route(gateway: GatewayFactory, store_url: str) -> Running:
    """A gateway on `store_url` with tests.support's route keys and ROUTES applied by
    an admin (a shared route)."""
    served = gateway(store=store_url, keys=base.ROUTE_KEYS)
    with Client(served.url, api_key=ADMIN_KEY) as client:
        client.apply(base.ROUTES, "the support route")
    return served


def apply_slos(running: Running, text: str, key: str, **extra: Any) -> httpx.Response:
    """POST /api/slos/apply of `text` as slos.yaml, with `extra` fields (prune, dry_run)."""
    body = {"yaml": text, "message": "objectives", "source": "slos.yaml", **extra}
    return httpx.post(f"{running.url}/api/slos/apply", json=body, headers=auth(key))
