"""A route that outlived its model (issue 10, item 3): applied under a configuration with
`sim-1`, served by a gateway without it. Start-up warns, a call names the route."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from tests.support import ROUTES, GatewayFactory

SIM_ROUTES = ROUTES.replace("model: gpt-mock", "model: sim-1")
WARNING = (
    "route 'support-answer' (tenant shared (every tenant)): its stable version v1 serves "
    "model 'sim-1', which this gateway does not configure"
)


def test_a_route_whose_model_is_gone_is_named_at_start_and_in_the_error(
    gateway: GatewayFactory, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = gateway(store=store_url)  # keys off
    applied = httpx.post(
        first.url + "/api/routes/apply", json={"yaml": SIM_ROUTES, "message": "m"}, timeout=10
    )
    assert applied.status_code == 200, applied.text
    logged = [r.getMessage() for r in caplog.records if r.name == "trimtab.api.routes"]
    assert "route support-answer: created v1 by anonymous (keys off)" in logged
    assert not [r for r in caplog.records if WARNING in r.getMessage()]
    first.server.stop()

    caplog.clear()
    models = {"gpt-mock": {"provider": "upstream", "model": "mock-1"}}
    second = gateway(store=store_url, models=models)
    [warning] = [r for r in caplog.records if WARNING in r.getMessage()]
    assert warning.levelno == logging.WARNING
    client = openai.OpenAI(base_url=second.url + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(
            model="route:support-answer",
            messages=[],
            extra_body={"variables": {"policy": "p", "question": "q"}},
        )
    assert (
        "route 'support-answer' (v1) serves model 'sim-1', which this gateway does not "
        "configure (configured: gpt-mock)" in str(exc.value)
    )
    assert exc.value.code == "model_not_found"


def test_no_warning_when_every_route_model_is_configured(
    gateway: GatewayFactory, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = gateway(store=store_url)
    applied = httpx.post(
        first.url + "/api/routes/apply", json={"yaml": ROUTES, "message": "m"}, timeout=10
    )
    assert applied.status_code == 200, applied.text
    first.server.stop()
    caplog.clear()
    caplog.set_level(logging.WARNING)
    gateway(store=store_url)
    assert not [r for r in caplog.records if r.name == "trimtab.rollouts.table"]
