"""The cost and negative-feedback SLIs end to end, on SQLite and PostgreSQL: requests
through a real gateway with the official openai and anthropic SDKs (the anthropic model
priced 20x higher, so its answers cost more than the ceiling), feedback through
`POST /api/feedback`, and the SLOs' statuses from `GET /api/slos/{slo}` moving with both."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx

from tests.gateway.support import openai_client
from tests.support import ADMIN_KEY, APP_KEY, KEYS, GatewayFactory, Running, auth, stored
from trimtab.slo.sli import COST_CAVEAT

# gpt-mock: $0.15 / $0.60 per million tokens; claude-mock: $3 / $15 (tests/support.py).
# A 4-word question and the mock's 7-word answer cost about $5e-6 on gpt-mock and $1.2e-4
# on claude-mock: the ceiling sits between
SLOS = """
slos:
  acme-cost:
    tenant: acme
    sli: {kind: cost, ceiling_usd: 0.00005}
    objective: 0.9
  acme-quality:
    tenant: acme
    sli: {kind: negative_feedback}
    objective: 0.9
"""


def _status(running: Running, name: str) -> dict[str, Any]:
    response = httpx.get(f"{running.url}/api/slos/{name}", headers=auth(ADMIN_KEY))
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def _feedback(running: Running, body: dict[str, Any]) -> None:
    response = httpx.post(f"{running.url}/api/feedback", json=body, headers=auth(APP_KEY))
    assert response.status_code == 201, response.text


def test_cost_over_the_ceiling_and_feedback_move_the_slos(
    gateway: GatewayFactory, store_url: str
) -> None:
    running = gateway(store=store_url, keys=KEYS)
    body = {"yaml": SLOS, "message": "objectives", "source": "slos.yaml"}
    applied = httpx.post(f"{running.url}/api/slos/apply", json=body, headers=auth(ADMIN_KEY))
    assert applied.status_code == 200, applied.text
    for name in ("acme-cost", "acme-quality"):
        assert _status(running, name)["standing"] == "no_data"

    ids = []
    client = openai_client(running)
    for i in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-mock", messages=[{"role": "user", "content": f"where is order {i}"}]
        )
        ids.append(raw.headers["x-trimtab-request-id"])
    claude = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    for i in range(2):
        raw_message = claude.messages.with_raw_response.create(
            model="claude-mock",
            max_tokens=64,
            messages=[{"role": "user", "content": f"where is parcel {i}"}],
        )
        ids.append(raw_message.headers["x-trimtab-request-id"])
    costs = [stored(running, rid)["cost_usd"] for rid in ids]
    assert all(c < 0.00005 for c in costs[:3]) and all(c > 0.00005 for c in costs[3:]), costs

    cost = _status(running, "acme-cost")
    assert (cost["good"], cost["valid"], cost["standing"]) == (3, 5, "missing")
    assert cost["definition"]["sli"] == {"kind": "cost", "ceiling_usd": 0.00005}
    assert cost["notes"] == [COST_CAVEAT]
    quality = _status(running, "acme-quality")
    assert (quality["good"], quality["valid"], quality["standing"]) == (5, 5, "meeting")

    _feedback(running, {"request_id": ids[0], "thumbs": "down", "comment": "wrong order"})
    _feedback(running, {"request_id": ids[0], "thumbs": "down"})  # the same request again
    _feedback(running, {"request_id": ids[1], "thumbs": "up"})
    _feedback(running, {"request_id": ids[3], "score": 0.9, "escalated": True})
    quality = _status(running, "acme-quality")
    assert (quality["good"], quality["valid"], quality["standing"]) == (3, 5, "missing")
    assert quality["budget"]["spent"] == 2
