"""The runner end to end: a real gateway on loopback, the mock provider behind it, the
run's results kept through the control-plane API (the CLI's ledger)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from tests.evals.support import SLOW_MODELS, SUITE_FILE, chats, golden
from tests.support import OPERATOR_KEY, ROUTE_KEYS, ROUTES, V2, GatewayFactory, Running, base_config
from trimtab.cli.evalrun import ApiLedger
from trimtab.client import AsyncClient, Client
from trimtab.evals.datasets import Item
from trimtab.evals.runner import (
    Gateway,
    ItemInputError,
    Plan,
    Progress,
    Runner,
    body_digest,
    request_body,
)
from trimtab.evals.scorers import Answer, build
from trimtab.evals.scoring import score_all, stored_text
from trimtab.evals.store import item_from_json
from trimtab.evals.suites import parse_suites
from trimtab.registry.bundle import Bundle
from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str, tmp_path: Path) -> Running:
    models = {**base_config("http://x", sqlite_url, tmp_path / "s")["models"], **SLOW_MODELS}
    return gateway(store=sqlite_url, keys=ROUTE_KEYS, models=models)


def definition(name: str) -> dict[str, object]:
    suite: dict[str, object] = yaml.safe_load(SUITE_FILE)["evals"][name]
    return suite


def setup(running: Running, items: int = 12) -> None:
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(ROUTES, "v1")
        c.push_dataset("golden", golden(items), "golden set")
        c.push_dataset("chats", chats(items), "chats")


async def run(running: Running, run_id: str, **options: object) -> Progress:
    async with AsyncClient(running.url, OPERATOR_KEY) as client:
        detail = await client.eval_run(run_id)
        contents = await client.dataset_version(
            detail["dataset"], detail["dataset_version"], tenant=detail["dataset_tenant"] or ""
        )
        suite = parse_suites({"evals": {detail["suite"]: detail["definition"]}})[0]
        bundle = Bundle.from_json(detail["bundle"]) if detail["bundle"] else None
        items = [item_from_json(dict(i)) for i in contents["data"]]
        plan = Plan(run_id, suite, items, bundle=bundle, model=detail["model"])
        gateway = Gateway(running.url, OPERATOR_KEY)
        runner = Runner(plan, gateway, ApiLedger(client, run_id), **options)  # type: ignore[arg-type]
        return await runner.run()


def chat_calls(upstream: MockUpstream) -> int:
    return sum(1 for r in upstream.requests if r.path == "/v1/chat/completions")


def test_a_run_renders_the_version_calls_through_the_gateway_and_scores(
    running: Running, upstream: MockUpstream
) -> None:
    setup(running, items=12)
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("support-golden", definition("support-golden"))
    assert made["status"] == "incomplete" and made["items"] == 12
    assert made["route"] == "support-answer" and made["route_version"] == 1
    before = chat_calls(upstream)
    progress = asyncio.run(run(running, made["id"], concurrency=4))
    assert (progress.called, progress.cached, progress.errors) == (12, 0, 0)
    assert chat_calls(upstream) - before == 12
    sent = [r.body for r in upstream.requests if r.path == "/v1/chat/completions"][-12:]
    # the version's template and params, as the gateway would render route:support-answer
    assert all(
        b["messages"][0]["content"] == "You are Acme's support assistant. Policy: p" for b in sent
    )
    assert all(b["temperature"] == 0.2 and b["max_tokens"] == 400 for b in sent)
    with Client(running.url, OPERATOR_KEY) as c:
        detail = c.eval_run(made["id"])
        results = c.eval_results(made["id"])
    assert detail["status"] == "complete"
    echoed = next(s for s in detail["summary"]["scorers"] if s["scorer"] == "echoed")
    assert echoed["scored"] == 12 and echoed["pass_rate"] == 0.5
    low, high = echoed["pass_rate_interval"]
    assert low < 0.5 < high
    assert [r["item_id"] for r in results] == [f"q{i}" for i in range(12)]
    assert results[0]["scores"]["echoed"]["passed"] is True
    assert results[1]["scores"]["echoed"]["passed"] is False
    assert all(r["request_id"] and r["request_id"].startswith("req_") for r in results)
    # each call is recorded like any other request, tagged with the run
    assert running.wait_for_rows(12) >= 12
    with Client(running.url, OPERATOR_KEY) as c:
        records = list(c.iter_requests(feature=f"eval:{made['id']}"))
    assert sorted(r["id"] for r in records) == sorted(r["request_id"] or "" for r in results)
    assert {r["session.id"] for r in records} == {made["id"]}


def test_a_second_run_of_the_same_target_is_served_from_the_cache(
    running: Running, upstream: MockUpstream
) -> None:
    setup(running, items=10)
    with Client(running.url, OPERATOR_KEY) as c:
        first = c.create_eval_run("support-golden", definition("support-golden"))
    asyncio.run(run(running, first["id"]))
    before = chat_calls(upstream)
    with Client(running.url, OPERATOR_KEY) as c:
        again = c.create_eval_run("support-golden", definition("support-golden"))
    progress = asyncio.run(run(running, again["id"]))
    assert (progress.called, progress.cached) == (0, 10)
    assert chat_calls(upstream) == before  # nothing was called
    with Client(running.url, OPERATOR_KEY) as c:
        detail = c.eval_run(again["id"])
    assert detail["status"] == "complete" and detail["cached"] == 10
    # with the cache off every item is called again
    with Client(running.url, OPERATOR_KEY) as c:
        third = c.create_eval_run("support-golden", definition("support-golden"))
    progress = asyncio.run(run(running, third["id"], cache=False))
    assert (progress.called, progress.cached) == (10, 0)
    assert chat_calls(upstream) - before == 10
    # another version is another target: nothing of v1's answers is reused
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(V2, "v2")
        other = c.create_eval_run("support-golden", definition("support-golden"), version=2)
    progress = asyncio.run(run(running, other["id"]))
    assert (progress.called, progress.cached) == (10, 0)


def test_a_resumed_run_calls_only_the_items_it_does_not_hold(
    running: Running, upstream: MockUpstream
) -> None:
    setup(running, items=10)
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("slow-golden", definition("slow-golden"))
    run_id = made["id"]

    async def interrupted() -> None:
        three = asyncio.Event()

        def watch(p: Progress) -> None:
            if p.done >= 3:
                three.set()

        task = asyncio.create_task(run(running, run_id, concurrency=2, on_progress=watch))
        await three.wait()
        task.cancel()  # what Ctrl-C does: the scored results are kept, the calls in flight not
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    with Client(running.url, OPERATOR_KEY) as c:
        held = c.eval_run(run_id)["done"]
    assert 3 <= held < 10
    before = chat_calls(upstream)
    progress = asyncio.run(run(running, run_id, concurrency=2))
    assert progress.skipped == held
    assert progress.called == 10 - held
    assert chat_calls(upstream) - before == 10 - held
    with Client(running.url, OPERATOR_KEY) as c:
        detail = c.eval_run(run_id)
    assert detail["status"] == "complete" and detail["done"] == 10


def test_failed_calls_are_counted_not_dropped(running: Running, upstream: MockUpstream) -> None:
    setup(running, items=4)
    suite = {
        "model": "gpt-500",
        "dataset": "chats",
        "scorers": [{"name": "replied", "kind": "regex", "pattern": "mock"}],
    }
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("broken", suite)
    progress = asyncio.run(run(running, made["id"]))
    assert progress.errors == 4
    with Client(running.url, OPERATOR_KEY) as c:
        detail = c.eval_run(made["id"])
        results = c.eval_results(made["id"])
    assert detail["status"] == "complete" and detail["errors"] == 4
    assert detail["summary"]["failed_items"] == ["c0", "c1", "c2", "c3"]
    assert results[0]["error"] is not None and results[0]["error"].startswith("HTTP 5")
    assert "(request req_" in results[0]["error"]


def test_an_item_the_target_cannot_take_is_an_error_naming_it() -> None:
    suite = parse_suites(yaml.safe_load(SUITE_FILE))[0]
    bundle = Bundle.from_json(
        {"model": "gpt-mock", "params": {}, "messages": [{"role": "user", "content": "{{q}}"}]}
    )
    routed = Plan("run_x", suite, [], bundle=bundle)
    with pytest.raises(ItemInputError, match=r"item 'a': .*'q'"):
        request_body(routed, Item("a", {"other": "1"}))
    body = request_body(routed, Item("b", {"q": "hi"}))
    assert body == {"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]}
    plain = Plan("run_x", suite, [], model="gpt-mock")
    with pytest.raises(ItemInputError, match="item 'c' has variables but no messages"):
        request_body(plain, Item("c", {"q": "hi"}))
    # the digest keys the cache: the same body, the same digest, whatever the key order
    assert body_digest({"a": 1, "b": [2]}) == body_digest({"b": [2], "a": 1})


def test_a_nul_in_an_answer_or_a_reason_is_stored_as_a_replacement_character() -> None:
    # the API refuses a NUL anywhere in a body: one answer with a NUL would stop the run
    assert stored_text("a\x00b") == "a\ufffdb"
    exact = {"name": "same", "kind": "exact"}
    suite = {"model": "m", "dataset": "d", "scorers": [exact]}
    (spec,) = parse_suites({"evals": {"s": suite}})[0].scorers
    scores = score_all({"same": build(spec)}, Item("q", {}, expected="never"), Answer("x\x00y"))
    assert scores["same"]["reason"] == "'x\ufffdy' is not 'never'"


def test_cost_and_latency_come_from_the_gateways_record_of_each_call(
    gateway: GatewayFactory, sqlite_url: str, tmp_path: Path, upstream: MockUpstream
) -> None:
    models = base_config("http://x", sqlite_url, tmp_path / "s")["models"]
    # priced high, always failing, served by gpt-mock: the record prices what served
    models["gpt-fallback"] = {
        "provider": "upstream",
        "model": "fail-500",
        "fallbacks": ["gpt-mock"],
        "pricing": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0},
    }
    running = gateway(store=sqlite_url, keys=ROUTE_KEYS, models=models)
    setup(running, items=3)
    scorers = [
        {"name": "cheap", "kind": "cost", "max_usd": 0.00001},
        {"name": "tiny", "kind": "cost", "max_usd": 0.000001},
        {"name": "quick", "kind": "latency", "max_ms": 60_000},
    ]
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("priced", {"model": "gpt-fallback", "dataset": "chats",
                                            "scorers": scorers})  # fmt: skip
    asyncio.run(run(running, made["id"]))
    with Client(running.url, OPERATOR_KEY) as c:
        results = c.eval_results(made["id"])
        records = {r["id"]: r for r in c.iter_requests(feature=f"eval:{made['id']}")}
    # "hello c0": 2 words in, "mock reply to: hello c0": 5 out, at gpt-mock's prices
    expected = (2 * 0.15 + 5 * 0.60) / 1_000_000
    for result in results:
        assert result["error"] is None
        assert result["cost_usd"] == pytest.approx(expected)
        assert records[result["request_id"] or ""]["cost_usd"] == pytest.approx(expected)
        assert result["scores"]["cheap"]["passed"] is True
        assert result["scores"]["cheap"]["reason"].startswith("cost 3.3e-06 USD")
        assert result["scores"]["tiny"]["passed"] is False
        assert (result["latency_ms"] or 0) > 0
        assert result["scores"]["quick"]["passed"] is True
    # reused from the cache, an answer keeps the cost its call had
    with Client(running.url, OPERATOR_KEY) as c:
        again = c.create_eval_run("priced", made["definition"])
    progress = asyncio.run(run(running, again["id"]))
    assert progress.cached == 3
    with Client(running.url, OPERATOR_KEY) as c:
        reused = c.eval_results(again["id"])
    assert all(r["scores"]["cheap"]["passed"] for r in reused)
    assert all(r["cost_usd"] == pytest.approx(expected) for r in reused)


def test_similarity_is_scored_across_the_items_of_a_batch(running: Running) -> None:
    setup(running, items=12)
    suite = {
        "route": "support-answer",
        "dataset": "golden",
        "scorers": [
            {"name": "close", "kind": "similarity", "threshold": 0.5},
            {"name": "echoed", "kind": "contains"},
        ],
    }
    with Client(running.url, OPERATOR_KEY) as c:
        made = c.create_eval_run("similar", suite)
    progress = asyncio.run(run(running, made["id"], concurrency=4))
    assert (progress.called, progress.errors) == (12, 0)
    with Client(running.url, OPERATOR_KEY) as c:
        results = c.eval_results(made["id"])
        items = {i["id"]: item_from_json(dict(i)) for i in c.dataset_version("golden", 1)["data"]}
    alone = build(parse_suites({"evals": {"s": suite}})[0].scorers[0])
    for result in results:
        close = result["scores"]["close"]
        one = alone(items[result["item_id"]], Answer(result["output"] or ""))
        assert close["value"] == pytest.approx(one.value, abs=1e-5)
        assert (close["passed"], close["reason"]) == (one.passed, one.reason)
        assert set(result["scores"]) == {"close", "echoed"}
