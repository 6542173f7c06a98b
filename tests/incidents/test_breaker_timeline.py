"""Breaker trips on an incident's timeline, end to end: a model's upstream answers 503 (the
official OpenAI SDK calling the gateway), its deployment's breaker opens, the probe's alert
names the models the deployment serves, and the timeline of an incident of one of them
shows the trip and, once a probe request succeeds, the closing; an incident of another
model does not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.rollouts.support import apply, route_call, routes_yaml
from tests.support import (
    APP_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    GatewayFactory,
    Running,
    base_config,
)
from trimtab.alerts.model import Alert
from trimtab.alerts.store import list_alerts
from trimtab.client import Client
from trimtab.testing.mock_upstream import MockUpstream

DEPLOYMENT = "upstream/flaky-3"  # the mock answers its first 3 requests with 503
BREAKER = {"failure_ratio": 0.5, "min_requests": 3, "window_s": 60, "cooldown_s": 1}


def _running(gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path) -> Running:
    models = base_config(upstream.url, "sqlite://", tmp_path / "x")["models"]
    models["gpt-flaky"] = {"provider": "upstream", "model": "flaky-3", "breaker": BREAKER}
    # a second name on the same upstream: one deployment, one breaker, two models
    models["gpt-flaky-alias"] = {"provider": "upstream", "model": "flaky-3"}
    upstream.clear()  # the mock's per-model counters: flaky-3 fails 3 times from here
    # a firing probe signal expires four intervals on: 2 s, so a round a loaded machine
    # delays does not end the alert (and open a second one) while the breaker is open
    return gateway(keys=ROUTE_KEYS, models=models, alerts={"outbox": {"probe_interval_s": 0.5}})


def _breaker_alert(running: Running, state: str) -> Alert | None:
    for alert in list_alerts(running.engine, sources=("breaker",)):
        if alert.dedup_key == f"breaker/{DEPLOYMENT}" and alert.state == state:
            return alert
    return None


def _wait(check: Any, what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_breaker_trip_and_its_closing_are_on_the_incident_timeline(
    gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    running = _running(gateway, upstream, tmp_path)
    sdk = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": "is the vendor up?"}]
    for _ in range(3):
        try:
            sdk.chat.completions.create(model="gpt-flaky", messages=messages)
            raise AssertionError("the upstream's first answers are 503s")
        except openai.APIStatusError as exc:
            assert exc.status_code >= 500
    tripped = _wait(lambda: _breaker_alert(running, "firing"), "the breaker's alert")
    assert tripped.labels == {"deployment": DEPLOYMENT, "models": "gpt-flaky,gpt-flaky-alias"}

    with Client(running.url, api_key=OPERATOR_KEY) as client:
        incident = client.open_incident(
            "vendor_outage", "gpt-flaky answers 503", models=["gpt-flaky"], severity=2
        )
        other = client.open_incident(
            "vendor_outage", "an unrelated model", models=["gpt-mock"], severity=3
        )
        time.sleep(1.2)  # past the cooldown: the next request is the probe, and succeeds
        answer = sdk.chat.completions.create(model="gpt-flaky", messages=messages)
        assert answer.choices[0].message.content
        _wait(lambda: _breaker_alert(running, "resolved"), "the breaker's alert resolved")

        entries = client.incident_timeline(incident["id"])
        unrelated = client.incident_timeline(other["id"])
    breaker = [e for e in entries if e["kind"] in ("breaker_tripped", "breaker_closed")]
    assert [e["kind"] for e in breaker] == ["breaker_tripped", "breaker_closed"]
    trip, closing = breaker
    serving = f"breaker of {DEPLOYMENT} (serving gpt-flaky, gpt-flaky-alias)"
    assert trip["source"] == "alert"
    assert trip["summary"] == f"{serving} tripped: its requests go elsewhere"
    assert closing["summary"] == f"{serving} closed"
    assert trip["detail"] is not None
    assert trip["detail"]["alert"] == tripped.id and trip["detail"]["source"] == "breaker"
    assert trip["at"] < closing["at"]
    opened = next(e for e in entries if e["source"] == "incident" and e["kind"] == "opened")
    assert trip["at"] < opened["at"]  # the trip came first: two hours back are searched
    assert not [e for e in unrelated if e["kind"].startswith("breaker_")]


def test_an_incident_of_a_route_shows_the_breaker_of_the_model_serving_it(
    gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    """An incident named by its route only (as a page of the route's SLO opens one): the
    model that served the route in the window is read from the rollups, and the trip of
    its deployment's breaker is on the timeline."""
    running = _running(gateway, upstream, tmp_path)
    apply(running, routes_yaml("gpt-flaky"), "launch")  # acme's route faq
    with httpx.Client(timeout=30) as http:
        failed = [route_call(http, running.url, f"user-{i}").status_code for i in range(3)]
    assert all(status >= 500 for status in failed), failed
    _wait(lambda: _breaker_alert(running, "firing"), "the breaker's alert")
    running.wait_for_rows(3)
    with Client(running.url, api_key=OPERATOR_KEY) as client:
        incident = client.open_incident("vendor_outage", "faq fails", routes=["faq"])
        assert incident["models"] == []
        entries = client.incident_timeline(incident["id"])
    (trip,) = [e for e in entries if e["kind"] == "breaker_tripped"]
    assert trip["summary"].startswith(f"breaker of {DEPLOYMENT} (serving gpt-flaky, ")
