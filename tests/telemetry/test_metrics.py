"""/metrics: bounded label values, and who may read it."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    KEYS,
    VIEWER_KEY,
    GatewayFactory,
    Running,
)
from trimtab.config import parse_config
from trimtab.telemetry.metrics import OTHER, GatewayMetrics, LabelValues
from trimtab.telemetry.record import RequestRecord

MSGS = [{"role": "user", "content": "hi"}]
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def series(text: str) -> list[tuple[str, dict[str, str]]]:
    """Every sample of an exposition: (name, labels)."""
    return [
        (s.name, s.labels)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def label_values(text: str, label: str) -> set[str]:
    return {labels[label] for _, labels in series(text) if label in labels}


# -- the label values, pure ------------------------------------------------------------------


def test_label_values_come_from_the_configuration() -> None:
    config = parse_config(
        {
            "providers": {"sim": {"kind": "simulator"}},
            "models": {"m1": {"provider": "sim"}},
            "keys": [{"key": "k" * 8, "tenant": "acme"}],
        }
    )
    values = LabelValues.from_config(config)
    assert (values.model("m1"), values.model("x-random-123"), values.model(None)) == (
        "m1",
        OTHER,
        OTHER,
    )
    assert (values.provider("sim"), values.provider("nope"), values.provider(None)) == (
        "sim",
        OTHER,
        "",
    )
    # config-file tenants and "default"; tenants that exist only in the store are `other`
    assert [values.tenant(t) for t in ("acme", "default", "made-by-api")] == [
        "acme",
        "default",
        OTHER,
    ]


def record(i: int, model: str, tenant: str = "acme", status: int = 200) -> RequestRecord:
    return RequestRecord(
        id=f"r{i}",
        started_at=0.0,
        api="openai",
        operation="chat",
        tenant=tenant,
        request_model=model,
        provider="upstream" if status < 400 else None,
        status_code=status,
        duration_ms=3.0,
        ttft_ms=1.0,
        input_tokens=2,
        output_tokens=3,
        cost_usd=0.001,
    )


def test_series_stay_bounded_whatever_clients_send() -> None:
    metrics = GatewayMetrics(LabelValues(["gpt-mock"], ["upstream"], ["acme"]))
    metrics.observe(record(0, "gpt-mock"))
    before = len(series(metrics.exposition().decode()))
    for i in range(1000):
        metrics.observe(record(i, f"bogus-{i}", tenant=f"t-{i}", status=404))
        metrics.observe(record(i, f"bogus-{i}", tenant=f"t-{i}"))
    text = metrics.exposition().decode()
    assert "bogus-" not in text and "t-1" not in text
    assert label_values(text, "model") == {"gpt-mock", OTHER}
    assert label_values(text, "tenant") == {"acme", OTHER}
    # one more (model, provider, tenant) combination and one more status, not 2,000 series
    assert len(series(text)) < 3 * before
    requests = metrics.registry.get_sample_value
    assert requests("trimtab_requests_total", {**_OTHER_404, "provider": ""}) == 1000
    assert requests("trimtab_requests_total", {**_OTHER_404, "status_code": "200"}) == 1000
    assert requests("trimtab_tokens_total", {"model": OTHER, "tenant": OTHER, "direction": "input"})


_OTHER_404 = {"model": OTHER, "provider": "upstream", "tenant": OTHER, "status_code": "404"}


def samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_batch_counts_as_its_records_one_by_one() -> None:
    """The writer counts a batch at once (a counter's `inc` per label combination, with
    the sum): the same series and values as counting each record."""
    labels = LabelValues(["gpt-mock", "claude-mock"], ["upstream"], ["acme"])
    recs = [
        record(i, ("gpt-mock", "claude-mock", "made-up")[i % 3], ("acme", "x")[i % 2], status)
        for i, status in enumerate([200] * 40 + [502] * 5 + [429] * 5)
    ]
    for i, r in enumerate(recs):  # some without tokens, cost or a first token
        if i % 4 == 0:
            r.input_tokens, r.output_tokens, r.cost_usd, r.ttft_ms = None, 0, None, None
    one_by_one, batched = GatewayMetrics(labels), GatewayMetrics(labels)
    for r in recs:
        one_by_one.observe(r)
    batched.observe_all(recs[:17])
    batched.observe_all(recs[17:])
    expected, got = samples(one_by_one), samples(batched)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_children_are_kept_per_combination_seen() -> None:
    """Each record's children are looked up once per combination of bounded label values:
    what clients send adds no entry beyond `other`."""
    metrics = GatewayMetrics(LabelValues(["gpt-mock"], ["upstream"], ["acme"]))
    metrics.observe_all(record(i, f"bogus-{i}", tenant=f"t-{i}") for i in range(500))
    metrics.observe_all(record(i, "gpt-mock") for i in range(500))
    assert len(metrics._seen) == 2  # (other, upstream, other, 200) and (gpt-mock, ..., acme)


# -- through a real gateway ------------------------------------------------------------------


def scrape(running: Running, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(running.url + "/metrics", headers=headers or {}, timeout=10)


def chat(running: Running, model: str, key: str = APP_KEY) -> httpx.Response:
    return httpx.post(
        running.url + "/v1/chat/completions",
        json={"model": model, "messages": MSGS},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_metrics_need_an_admin_key_when_keys_are_configured(gateway: GatewayFactory) -> None:
    running = gateway(keys=KEYS)
    missing = scrape(running)
    assert missing.status_code == 401
    err = missing.json()["error"]
    assert err["code"] == "missing_api_key"
    assert err["request_id"] == missing.headers["x-trimtab-request-id"]
    for key in (VIEWER_KEY, APP_KEY):
        refused = scrape(running, {"authorization": f"Bearer {key}"})
        assert refused.status_code == 403, refused.text
        assert (
            "only a key with role 'admin' may read /metrics" in refused.json()["error"]["message"]
        )
    ok = scrape(running, ADMIN)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert "trimtab_telemetry_queue_depth 0.0" in ok.text


def test_public_metrics_need_no_key(gateway: GatewayFactory) -> None:
    running = gateway(keys=KEYS, metrics={"public": True})
    assert scrape(running).status_code == 200


def test_metrics_are_open_without_keys(gateway: GatewayFactory) -> None:
    assert scrape(gateway()).status_code == 200


def test_unknown_models_and_store_tenants_are_other(gateway: GatewayFactory) -> None:
    running = gateway(keys=KEYS)
    assert chat(running, "x-random-123").status_code == 404
    assert chat(running, "gpt-mock", GLOBEX_APP_KEY).status_code == 200
    made = httpx.post(
        running.url + "/api/keys",
        json={"tenant": "made-by-api", "role": "app", "owner": "test"},
        headers=ADMIN,
        timeout=10,
    )
    assert made.status_code == 201, made.text
    assert chat(running, "gpt-mock", made.json()["key"]).status_code == 200
    assert running.wait_for_rows(3) == 3
    text = scrape(running, ADMIN).text
    assert "x-random-123" not in text and "made-by-api" not in text
    found = {
        (labels["model"], labels["tenant"], labels["status_code"])
        for name, labels in series(text)
        if name == "trimtab_requests_total"
    }
    assert found == {
        (OTHER, "acme", "404"),
        ("gpt-mock", "globex", "200"),
        ("gpt-mock", OTHER, "200"),
    }


def test_a_thousand_bogus_models_add_no_series(gateway: GatewayFactory) -> None:
    running, n = gateway(keys=KEYS), 1000
    with httpx.Client(base_url=running.url, timeout=30) as http:
        auth = {"authorization": f"Bearer {APP_KEY}"}
        http.post("/v1/chat/completions", json={"model": "bogus-0", "messages": MSGS}, headers=auth)
        assert running.wait_for_rows(1) == 1
        before = series(http.get("/metrics", headers=ADMIN).text)
        for i in range(1, n):
            resp = http.post(
                "/v1/chat/completions", json={"model": f"bogus-{i}", "messages": MSGS}, headers=auth
            )
            assert resp.status_code == 404
        assert running.wait_for_rows(n) == n
        after = series(http.get("/metrics", headers=ADMIN).text)
    assert {name for name, _ in after} == {name for name, _ in before}
    assert len(after) == len(before)
    assert {labels["model"] for _, labels in after if "model" in labels} == {OTHER}
