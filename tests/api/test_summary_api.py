"""GET /api/metrics/summary, /metrics, /healthz and /readyz through a real gateway."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    GLOBEX_VIEWER_KEY,
    KEYS,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)

# the column of a /api/requests row that each group_by dimension summarises
DIMENSIONS = {
    "model": "gen_ai.request.model",
    "provider": "provider",
    "tenant": "tenant",
    "feature": "feature",
    "status": "http.response.status_code",
}


@dataclass
class Traffic:
    running: Running
    client: httpx.Client

    def get(self, path: str, key: str | None = ADMIN_KEY, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=auth(key) if key else {})

    def rows(self, key: str = ADMIN_KEY, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/api/requests", key, limit=1000, **params)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        rows: list[dict[str, Any]] = response.json()["data"]
        return rows

    def summary(self, key: str = ADMIN_KEY, **params: Any) -> dict[str, Any]:
        response = self.get("/api/metrics/summary", key, **params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


def call(
    client: httpx.Client,
    key: str,
    model: str,
    *,
    status: int = 200,
    stream: bool = False,
    feature: str | None = None,
    text: str = "how are you today",
) -> None:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    headers = auth(key)
    if feature:
        headers["x-trimtab-feature"] = feature
    if stream:
        body["stream"] = True
        with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
            r.read()
    else:
        r = client.post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == status, r.text


def make_traffic(client: httpx.Client) -> int:
    n = 0
    for i in range(4):
        call(client, APP_KEY, "gpt-mock", feature="search", text="word " * (i + 1))
        n += 1
    for _ in range(3):
        call(client, APP_KEY, "gpt-mock", stream=True, feature="chat")
        n += 1
    for _ in range(2):
        call(client, APP_KEY, "sim-1")
        n += 1
    for _ in range(3):
        call(client, APP_KEY, "gpt-500", status=502, feature="search")
        n += 1
    call(client, APP_KEY, "gpt-400", status=400)
    n += 1
    for _ in range(2):
        call(client, GLOBEX_APP_KEY, "gpt-mock", feature="search")
        n += 1
    call(client, GLOBEX_APP_KEY, "sim-1", stream=True)
    call(client, GLOBEX_APP_KEY, "gpt-500", status=502)
    return n + 2


@pytest.fixture
def traffic(gateway: GatewayFactory, store_url: str) -> Iterator[Traffic]:
    running = gateway(store=store_url, keys=KEYS)
    with httpx.Client(base_url=running.url, timeout=30) as client:
        n = make_traffic(client)
        assert running.wait_for_rows(n) == n
        yield Traffic(running, client)


def exact_quantile(values: list[float], q: float) -> float:
    """numpy.quantile(values, q, method="lower"): the rank DDSketch estimates."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def check_group(summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """A summary (a group or the total) agrees with the request rows it covers."""
    assert rows
    errors = sum(1 for r in rows if r["http.response.status_code"] >= 400)
    assert summary["count"] == len(rows)
    assert summary["errors"] == errors
    assert summary["error_rate"] == pytest.approx(errors / len(rows))
    assert summary["input_tokens"] == sum(r["gen_ai.usage.input_tokens"] or 0 for r in rows)
    assert summary["output_tokens"] == sum(r["gen_ai.usage.output_tokens"] or 0 for r in rows)
    cost = sum(r["cost_usd"] or 0.0 for r in rows)
    assert summary["cost_usd"] == pytest.approx(cost, rel=1e-9, abs=1e-10)

    latency = summary["latency_ms"]
    assert None not in latency.values()
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"]
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        exact = exact_quantile([r["latency_ms"] for r in rows], q)
        assert math.isclose(latency[name], exact, rel_tol=0.0101), (name, latency, exact)

    ttfts = [r["ttft_ms"] for r in rows if r["ttft_ms"] is not None]
    ttft = summary["ttft_ms"]
    if ttfts:
        assert None not in ttft.values()
        assert 0 <= ttft["p50"] <= ttft["p95"] <= ttft["p99"]
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert math.isclose(ttft[name], exact_quantile(ttfts, q), rel_tol=0.0101)
    else:
        assert ttft == {"p50": None, "p95": None, "p99": None}


@pytest.mark.parametrize("group_by", sorted(DIMENSIONS))
def test_summary_groups_equal_the_request_rows(traffic: Traffic, group_by: str) -> None:
    rows = traffic.rows()
    data = traffic.summary(window="1h", group_by=group_by)
    assert data["window"] == "1h"
    assert data["group_by"] == group_by
    assert data["tenant"] is None  # an admin who chose none sees every tenant
    column = DIMENSIONS[group_by]
    labels = [g[group_by] for g in data["groups"]]
    assert sorted(map(str, labels)) == sorted(map(str, {r[column] for r in rows}))
    counts = [g["count"] for g in data["groups"]]
    assert counts == sorted(counts, reverse=True)
    for g in data["groups"]:
        check_group(g, [r for r in rows if r[column] == g[group_by]])
    check_group(data["total"], rows)


def test_summary_shows_errors_and_ttft(traffic: Traffic) -> None:
    groups = {g["model"]: g for g in traffic.summary(group_by="model")["groups"]}
    assert set(groups) == {"gpt-mock", "sim-1", "gpt-500", "gpt-400"}
    assert groups["gpt-500"]["count"] == 4
    assert groups["gpt-500"]["error_rate"] == 1.0
    assert groups["gpt-500"]["ttft_ms"]["p50"] is None  # nothing was streamed
    assert groups["gpt-mock"]["count"] == 9
    assert groups["gpt-mock"]["errors"] == 0
    assert groups["gpt-mock"]["ttft_ms"]["p50"] is not None  # three were streamed
    assert groups["gpt-mock"]["cost_usd"] > 0
    total = traffic.summary(group_by="model")["total"]
    assert total["errors"] == 5
    assert total["error_rate"] == pytest.approx(5 / 17)
    by_status = {g["status"]: g["count"] for g in traffic.summary(group_by="status")["groups"]}
    assert by_status == {200: 12, 502: 4, 400: 1}
    by_feature = {g["feature"]: g["count"] for g in traffic.summary(group_by="feature")["groups"]}
    assert by_feature == {"search": 9, "chat": 3, None: 5}


def test_summary_defaults(traffic: Traffic) -> None:
    data = traffic.summary()
    assert data["window"] == "1h"
    assert data["group_by"] == "model"
    assert data["total"]["count"] == 17
    assert data["from"] < data["to"]


def test_summary_of_a_viewer_counts_only_its_tenant(traffic: Traffic) -> None:
    acme_rows = traffic.rows(tenant="acme")
    data = traffic.summary(VIEWER_KEY, group_by="tenant")
    assert data["tenant"] == "acme"
    assert [g["tenant"] for g in data["groups"]] == ["acme"]
    check_group(data["total"], acme_rows)
    check_group(data["groups"][0], acme_rows)
    by_model = traffic.summary(VIEWER_KEY, group_by="model")
    for g in by_model["groups"]:
        check_group(g, [r for r in acme_rows if r["gen_ai.request.model"] == g["model"]])

    globex_rows = traffic.rows(tenant="globex")
    data = traffic.summary(GLOBEX_VIEWER_KEY)
    assert data["tenant"] == "globex"
    check_group(data["total"], globex_rows)
    assert data["total"]["count"] == 4

    response = traffic.get("/api/metrics/summary", VIEWER_KEY, tenant="globex")
    assert response.status_code == 403
    # an admin may choose
    check_group(traffic.summary(ADMIN_KEY, tenant="globex")["total"], globex_rows)


def test_bad_window_and_group_by_are_400(traffic: Traffic) -> None:
    for params, param in (
        ({"window": "abc"}, "window"),
        ({"window": "1w"}, "window"),
        ({"window": "0h"}, "window"),
        ({"window": "32d"}, "window"),
        ({"window": "-1h"}, "window"),
        ({"window": "1.5h"}, "window"),
        ({"group_by": "user"}, "group_by"),
        ({"group_by": "nope"}, "group_by"),
        ({"group_by": "MODEL"}, "group_by"),
    ):
        response = traffic.get("/api/metrics/summary", ADMIN_KEY, **params)
        assert response.status_code == 400, (params, response.text)
        error = response.json()["error"]
        assert error["param"] == param
        assert error["code"] == "invalid_parameter"
        assert param in error["message"]


def test_huge_window_is_400(traffic: Traffic) -> None:
    response = traffic.get("/api/metrics/summary", ADMIN_KEY, window="1000000000d")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "window"


# -- Prometheus and health -----------------------------------------------------------------


def prometheus(traffic: Traffic) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = traffic.client.get("/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def test_prometheus_metrics(traffic: Traffic) -> None:
    rows = traffic.rows()
    # the recorded counter moves right after the commit that made the rows visible
    deadline = time.monotonic() + 15
    while True:
        samples = prometheus(traffic)
        recorded = samples["trimtab_telemetry_recorded_total"][0][1]
        if recorded >= len(rows) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert recorded == len(rows)
    assert samples["trimtab_telemetry_spilled_total"][0][1] == 0

    per_model: dict[str, float] = {}
    for labels, value in samples["trimtab_requests_total"]:
        assert set(labels) == {"model", "provider", "tenant", "status_code"}
        per_model[labels["model"]] = per_model.get(labels["model"], 0) + value
    expected: dict[str, float] = {}
    for r in rows:
        model = r["gen_ai.request.model"]
        expected[model] = expected.get(model, 0) + 1
    assert per_model == expected
    errors = sum(
        v for labels, v in samples["trimtab_requests_total"] if labels["status_code"] == "502"
    )
    assert errors == 4
    assert samples["trimtab_store_up"][0][1] == 1
    assert samples["trimtab_telemetry_queue_depth"][0][1] == 0


def test_health_and_readiness(traffic: Traffic) -> None:
    response = traffic.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    response = traffic.client.get("/readyz")
    assert response.status_code == 200, response.text
    ready = response.json()
    assert ready["status"] == "ready"
    assert ready["problems"] == []
    assert ready["telemetry"]["spill_bytes"] == 0
