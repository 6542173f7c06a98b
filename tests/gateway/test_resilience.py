"""Failing providers: retries, fallbacks, timeouts, breakers; every attempt on the record."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support import APP_KEY, KEYS, GatewayFactory, Running, base_config, stored
from trimtab.testing.mock_upstream import MockUpstream

MSGS = [{"role": "user", "content": "are you there"}]

# fault -> the mock's upstream model name; each a model with a healthy fallback and one without
FAULTS = {
    "500": "fail-500",
    "503": "fail-503",
    "429": "fail-429",
    "hang": "hang",
    "reset": "reset",
    "invalid-json": "bad-json",
    "cut-mid-stream": "cut-stream",
    "slow-first-token": "slow-first-3000",
}
# what a client without a fallback sees: status and recorded error class
ALONE = {
    "500": (502, "upstream_error"),
    "503": (503, "upstream_unavailable"),
    "429": (429, "upstream_rate_limited"),
    "hang": (504, "upstream_timeout"),
    "reset": (502, "upstream_connection_lost"),
    "invalid-json": (502, "upstream_invalid_response"),
    "cut-mid-stream": (502, "upstream_connection_lost"),
    "slow-first-token": (504, "upstream_timeout"),
}
BOUNDS = {"timeout_s": 1.0, "ttft_timeout_s": 0.5, "stream_idle_timeout_s": 1.0}


def fault_models() -> dict[str, Any]:
    models: dict[str, Any] = {}
    for fault, upstream_model in FAULTS.items():
        common = {"provider": "upstream", "model": upstream_model, **BOUNDS}
        models[f"with-fallback-{fault}"] = {**common, "fallbacks": ["gpt-mock"]}
        models[f"alone-{fault}"] = common
    return models


@pytest.fixture
def running(gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Any) -> Running:
    models = base_config(upstream.url, "sqlite://", tmp_path / "x")["models"]
    models.update(fault_models())
    models["gpt-flaky"] = {"provider": "upstream", "model": "flaky-2", "retries": 2}
    models["gpt-flaky-no-retry"] = {"provider": "upstream", "model": "flaky-1"}
    models["gpt-429-retry"] = {"provider": "upstream", "model": "fail-429", "retries": 1}
    models["gpt-400-fallback"] = {
        "provider": "upstream",
        "model": "fail-400",
        "fallbacks": ["gpt-mock"],
        "retries": 2,
    }
    models["to-claude"] = {
        "provider": "upstream",
        "model": "fail-503",
        "fallbacks": ["claude-mock"],
        **BOUNDS,
    }
    models["pool"] = {
        "deployments": [
            # mostly the failing one, so its breaker surely sees enough failures to open
            {"provider": "upstream", "model": "fail-500", "weight": 9},
            {"provider": "upstream", "model": "mock-1", "weight": 1},
        ],
        "retries": 1,
        "breaker": {"failure_ratio": 0.5, "min_requests": 3, "window_s": 60, "cooldown_s": 1},
    }
    upstream.clear()
    return gateway(keys=KEYS, models=models)


def oai(running: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)


def attempts(row: dict[str, Any]) -> list[dict[str, Any]]:
    return list((row["attributes"] or {}).get("attempts", []))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fallback_hides_the_fault_non_streaming(running: Running, fault: str) -> None:
    raw = oai(running).chat.completions.with_raw_response.create(
        model=f"with-fallback-{fault}",
        messages=MSGS,  # type: ignore[arg-type]
    )
    assert raw.parse().choices[0].message.content == "mock reply to: are you there"
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert row["status_code"] == 200
    assert row["upstream_model"] == "mock-1"
    assert row["attributes"]["served_by"] == "gpt-mock"
    tried = attempts(row)
    assert [a["model"] for a in tried] == [f"with-fallback-{fault}", "gpt-mock"]
    assert tried[0]["outcome"] != "ok" and tried[0]["error"]
    assert tried[1]["outcome"] == "ok"
    assert row["input_tokens"] and row["cost_usd"] is not None


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fallback_hides_the_fault_streaming(running: Running, fault: str) -> None:
    raw = oai(running).chat.completions.with_raw_response.create(
        model=f"with-fallback-{fault}",
        messages=MSGS,  # type: ignore[arg-type]
        stream=True,
    )
    stream = raw.parse()
    assert isinstance(stream, openai.Stream)
    if fault == "cut-mid-stream":
        # tokens already reached the client: no silent switch, an explicit error instead
        with pytest.raises(openai.APIError, match="cut the stream"):
            for _ in stream:
                pass
        row = stored(running, raw.headers["x-trimtab-request-id"])
        assert row["status_code"] == 502
        return
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "mock reply to: are you there"
    row = stored(running, raw.headers["x-trimtab-request-id"])
    assert row["status_code"] == 200 and row["streamed"]
    assert [a["model"] for a in attempts(row)] == [f"with-fallback-{fault}", "gpt-mock"]
    assert row["output_tokens"] and row["cost_usd"] is not None


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_without_fallback_the_error_is_precise_and_bounded(
    running: Running, fault: str, stream: bool
) -> None:
    status, code = ALONE[fault]
    body = {"model": f"alone-{fault}", "messages": MSGS, "stream": stream}
    started = time.monotonic()
    with httpx.Client(timeout=30) as http:
        resp = http.post(
            running.url + "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {APP_KEY}"},
        )
    took = time.monotonic() - started
    rid = resp.headers["x-trimtab-request-id"]
    if stream and fault == "cut-mid-stream":
        assert resp.status_code == 200
        assert resp.text.rstrip().endswith("}")
        assert '"code":"upstream_connection_lost"' in resp.text.replace(" ", "")
        assert "[DONE]" not in resp.text
    else:
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["code"] == code and rid in error["message"]
    # bounded by the configured timeouts (1 s, first token 0.5 s), never the mock's hang
    assert took < 10
    row = stored(running, rid)
    assert row["status_code"] == status
    assert row["error_type"] == code


def test_retries_then_success_with_every_attempt_recorded(running: Running) -> None:
    raw = oai(running).chat.completions.with_raw_response.create(
        model="gpt-flaky",
        messages=MSGS,  # type: ignore[arg-type]
    )
    assert raw.parse().choices[0].message.content
    row = stored(running, raw.headers["x-trimtab-request-id"])
    outcomes = [a["outcome"] for a in attempts(row)]
    assert outcomes == ["http_503", "http_503", "ok"]
    assert all(a["deployment"] == "upstream/flaky-2" for a in attempts(row))


def test_no_retries_configured_means_one_attempt(running: Running) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        oai(running).chat.completions.create(
            model="gpt-flaky-no-retry",
            messages=MSGS,  # type: ignore[arg-type]
        )
    assert info.value.status_code == 503
    rid = info.value.response.headers["x-trimtab-request-id"]
    assert [a["outcome"] for a in attempts(stored(running, rid))] == ["http_503"]


def test_retry_after_is_honoured(running: Running) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        oai(running).chat.completions.create(model="gpt-429-retry", messages=MSGS)  # type: ignore[arg-type]
    rid = info.value.response.headers["x-trimtab-request-id"]
    first, second = attempts(stored(running, rid))
    # the mock says retry-after: 1; the second attempt starts no earlier than that
    assert second["at_ms"] - (first["at_ms"] + first["duration_ms"]) >= 990


def test_client_errors_are_neither_retried_nor_fallen_back(running: Running) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(running).chat.completions.create(model="gpt-400-fallback", messages=MSGS)  # type: ignore[arg-type]
    rid = info.value.response.headers["x-trimtab-request-id"]
    assert [a["outcome"] for a in attempts(stored(running, rid))] == ["http_400"]


def test_fallback_across_wire_formats(running: Running) -> None:
    """An OpenAI-wire model falling back to an Anthropic one, for both kinds of client."""
    reply = oai(running).chat.completions.create(model="to-claude", messages=MSGS)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "mock reply to: are you there"
    client = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    with client.messages.stream(model="to-claude", max_tokens=50, messages=MSGS) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
    assert text == "mock reply to: are you there"


def test_breaker_takes_a_failing_deployment_out_and_probes_it_back(running: Running) -> None:
    client = oai(running)
    rows = []
    for _ in range(12):
        raw = client.chat.completions.with_raw_response.create(model="pool", messages=MSGS)  # type: ignore[arg-type]
        assert raw.parse().choices[0].message.content  # retries land on the healthy one
        rows.append(stored(running, raw.headers["x-trimtab-request-id"]))
    tried = [a["deployment"] for r in rows for a in attempts(r)]
    failing = [i for i, d in enumerate(tried) if d == "upstream/fail-500"]
    assert 1 <= len(failing) <= 3, tried  # out of rotation once the breaker opened
    with httpx.Client(base_url=running.url) as http:
        auth = {"authorization": f"Bearer {KEYS[0]['key']}"}
        breakers = {
            b["deployment"]: b for b in http.get("/api/breakers", headers=auth).json()["data"]
        }
        assert breakers["upstream/fail-500"]["state"] == "open"
        assert breakers["upstream/mock-1"]["state"] == "closed"
        metrics = http.get("/metrics", headers=auth).text  # an admin key
        assert 'trimtab_breaker_open{deployment="upstream/fail-500"} 1.0' in metrics
        time.sleep(1.2)  # the cooldown is 1 s: the breaker lets one probe through
        assert http.get("/api/breakers", headers=auth).json()["data"][0]["state"] == "half_open"
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="pool", messages=MSGS)  # type: ignore[arg-type]
        rows.append(stored(running, raw.headers["x-trimtab-request-id"]))
    probes = [a for r in rows[12:] for a in attempts(r) if a["deployment"] == "upstream/fail-500"]
    assert len(probes) == 1  # one probe, it failed, the breaker is open again
