"""The refusal SLI end to end, on SQLite and PostgreSQL: requests through a real gateway
with the official openai and anthropic SDKs to the loopback mock upstream, whose model
`refuse` answers with a refusal (OpenAI's `content_filter` finish reason, whole and
streamed; Anthropic's `refusal` stop reason), then the SLO as `trimtab slo status`, the
API, the SLA report, the console's SLO page and the Prometheus gauges show it: the SLI,
the budget spent and the page-severity burn alert firing."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
from prometheus_client import CollectorRegistry

from tests.cli.support import trimtab, write
from tests.gateway.support import openai_client
from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.slo.gauges import SloGauges
from trimtab.slo.sli import REFUSAL_CAVEAT
from trimtab.slo.store import SloStore
from trimtab.testing.mock_replies import REFUSAL_TEXT

SLOS = """
slos:
  acme-answers:
    tenant: acme
    sli: {kind: refusal}
    objective: 0.99
"""


def _status(running: Running) -> dict[str, Any]:
    response = httpx.get(f"{running.url}/api/slos/acme-answers", headers=auth(ADMIN_KEY))
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def _console_page(running: Running, path: str) -> str:
    """`path` of the console, signed in with the viewer's key through the login form."""
    with httpx.Client(base_url=running.url, follow_redirects=True) as http:
        form = http.get("/ui/login").text
        match = re.search(r'name="csrf" value="([^"]+)"', form)
        assert match is not None, form
        signed = http.post("/ui/login", data={"csrf": match[1], "key": VIEWER_KEY, "next": path})
        assert signed.status_code == 200 and str(signed.url).endswith(path), signed.text
        return signed.text


def test_refused_answers_spend_the_budget(
    gateway: GatewayFactory, store_url: str, tmp_path: Path
) -> None:
    running = gateway(store=store_url, keys=ROUTE_KEYS)
    code, out = trimtab(running, "apply", "-f", write(tmp_path, SLOS), "-m", "objectives",
                        api_key=OPERATOR_KEY)  # fmt: skip
    assert code == 0, out
    assert _status(running)["standing"] == "no_data"

    client = openai_client(running)
    for i in range(8):
        answer = client.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": f"where is order {i}"}]
        )
        assert answer.choices[0].finish_reason == "stop"
    refused = client.chat.completions.create(
        model="gpt-refuse", messages=[{"role": "user", "content": "how do I pick a lock"}]
    )
    assert refused.choices[0].finish_reason == "content_filter"
    assert refused.choices[0].message.content == REFUSAL_TEXT
    chunks = client.chat.completions.create(
        model="gpt-refuse",
        messages=[{"role": "user", "content": "and a safe"}],
        stream=True,
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    claude = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    message = claude.messages.create(
        model="claude-refuse", max_tokens=64, messages=[{"role": "user", "content": "a car"}]
    )
    assert message.stop_reason == "refusal"
    message = claude.messages.create(
        model="claude-mock", max_tokens=64, messages=[{"role": "user", "content": "a parcel"}]
    )
    assert message.stop_reason == "end_turn"
    # a client error is in neither count (the model is unknown: 404)
    missing = httpx.post(
        f"{running.url}/v1/chat/completions",
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
        headers=auth(APP_KEY),
    )
    assert missing.status_code == 404
    assert running.wait_for_rows(13) == 13

    # 12 answered, 3 refused: 75 % against 99 %; 0.12 requests allowed, 3 spent
    status = _status(running)
    assert (status["good"], status["valid"], status["standing"]) == (9, 12, "missing")
    assert status["definition"]["sli"] == {"kind": "refusal"}
    assert status["notes"] == [REFUSAL_CAVEAT]
    assert status["budget"]["spent"] == 3
    assert abs(status["budget"]["remaining_share"] - (1 - 3 / 0.12)) < 1e-9

    code, out = trimtab(running, "slo", "status", api_key=VIEWER_KEY, columns=250)
    assert code == 0, out
    lines = out.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("acme-answers "))
    cells = lines[at].split()
    assert cells[cells.index("refusal") :][:8] == ["refusal", "75", "%", "99", "%", "9/12",
                                                   "-2.4e+03", "%"]  # fmt: skip
    assert "page >14.4x: FIRING" in lines[at]  # 25x over the hour and the 5 minutes
    assert f"note: {REFUSAL_CAVEAT}" in " ".join(out.split())

    month = datetime.now(UTC).strftime("%Y-%m")
    report = httpx.get(
        f"{running.url}/api/slos/report", params={"month": month}, headers=auth(VIEWER_KEY)
    ).json()
    (section,) = report["routes"]
    (slo,) = section["slos"]
    assert (slo["name"], slo["status"], slo["good"], slo["valid"]) == ("acme-answers", "missed",
                                                                       9, 12)  # fmt: skip
    assert slo["budget"]["requests_spent"] == 3

    page = _console_page(running, "/ui/slos")
    assert 'data-testid="slo-kind">refusal</span>: 75.000 %' in page, page
    assert "(9 good of 12) · error budget left -2400.0 %" in page
    assert '<span class="badge bad">page firing</span>' in page

    registry = CollectorRegistry()
    asyncio.run(SloGauges(SloStore(running.engine), registry).refresh())
    labels = {"slo": "acme-answers", "tenant": "acme"}
    assert registry.get_sample_value("trimtab_slo_sli", labels) == 0.75
    remaining = registry.get_sample_value("trimtab_slo_error_budget_remaining_ratio", labels)
    assert remaining is not None and abs(remaining - (1 - 3 / 0.12)) < 1e-9
