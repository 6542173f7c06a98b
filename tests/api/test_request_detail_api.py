"""GET /api/requests/{id} through a real gateway, on SQLite and PostgreSQL: what one
request's record holds, its cost, and that no key leaks."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.api.request_traffic import ALL_KEYS, Traffic, detail, key_id, when
from tests.support import ADMIN_KEY, APP_KEY

GPT_MOCK_INPUT_PER_MTOK = 0.15
GPT_MOCK_OUTPUT_PER_MTOK = 0.60


def expected_cost(input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * GPT_MOCK_INPUT_PER_MTOK + output_tokens * GPT_MOCK_OUTPUT_PER_MTOK
    ) / 1_000_000


def test_detail_of_a_call(traffic: Traffic) -> None:
    s = traffic.sent[1]  # gpt-mock, not streamed, tagged through metadata
    d = detail(traffic, s.id)
    usage = s.reply["usage"]
    assert d["id"] == s.id
    assert d["api"] == "openai"
    assert d["gen_ai.operation.name"] == "chat"
    assert d["gen_ai.request.model"] == "gpt-mock"
    assert d["gen_ai.response.model"] == s.reply["model"]
    assert d["gen_ai.response.id"] == s.reply["id"]
    assert d["gen_ai.provider.name"] == "openai"
    assert d["gen_ai.usage.input_tokens"] == usage["prompt_tokens"] == 8
    assert d["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert d["gen_ai.response.finish_reasons"] == ["stop"]
    assert d["provider"] == "upstream"
    assert d["upstream_model"] == "mock-1"
    assert d["tenant"] == "acme"
    assert d["key_id"] == key_id(APP_KEY)
    assert d["session.id"] == "s-1"
    assert d["feature"] == "search"
    assert d["http.response.status_code"] == 200
    assert d["error.type"] is None
    assert d["streamed"] is False
    assert d["ttft_ms"] is None
    assert d["request"] == s.body
    assert d["response"] == s.reply
    cost = expected_cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert cost > 0
    assert d["cost_usd"] == pytest.approx(cost, rel=1e-12)
    assert d["latency_ms"] > 0
    assert 0 <= d["overhead_ms"] <= d["latency_ms"]
    assert when(d) <= datetime.fromisoformat(d["ended_at"])


def test_detail_of_a_streamed_call(traffic: Traffic) -> None:
    s = next(x for x in traffic.sent if x.streamed)
    d = detail(traffic, s.id)
    assert d["streamed"] is True
    assert d["request"] == s.body
    assert isinstance(d["response"], dict)
    inp, out = d["gen_ai.usage.input_tokens"], d["gen_ai.usage.output_tokens"]
    assert inp == 6  # words in "stream me a few words please"
    assert out and out > 0
    assert d["cost_usd"] == pytest.approx(expected_cost(inp, out), rel=1e-12)
    assert d["ttft_ms"] is not None
    assert 0 < d["ttft_ms"] <= d["latency_ms"]
    assert 0 <= d["overhead_ms"] <= d["latency_ms"]
    assert d["key_id"] == key_id(APP_KEY)


def test_detail_of_a_failed_call(traffic: Traffic) -> None:
    s = traffic.sent[4]  # gpt-500
    d = detail(traffic, s.id)
    assert d["http.response.status_code"] == 502
    assert d["error.type"] == "upstream_error"
    assert d["error_message"]
    assert d["gen_ai.usage.input_tokens"] is None
    assert d["cost_usd"] is None
    assert d["response"]["error"]["request_id"] == s.id


def test_detail_of_a_simulator_call_costs_nothing(traffic: Traffic) -> None:
    s = traffic.sent[2]  # sim-1 has no pricing
    d = detail(traffic, s.id)
    assert d["gen_ai.provider.name"] == "simulator"
    assert d["gen_ai.usage.input_tokens"] == 2
    assert d["cost_usd"] == 0


def test_every_id_matches_the_header_and_keys_never_leak(traffic: Traffic) -> None:
    listing = traffic.get("/api/requests", ADMIN_KEY, limit=1000)
    for secret in ALL_KEYS:
        assert secret not in listing.text
    for s in traffic.sent:
        d = detail(traffic, s.id)
        assert d["id"] == s.id
        assert d["key_id"] == key_id(s.key)
        assert d["key_id"] not in (s.key, None)


def test_unknown_id_is_404(traffic: Traffic) -> None:
    response = traffic.get("/api/requests/req_nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
