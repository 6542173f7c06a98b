"""Eval runs in a real store (SQLite and PostgreSQL): a result is written once, counts, the
cache across runs of one target, per-tenant runs; and the run's summary and pairing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from trimtab.audit.log import Actor
from trimtab.errors import NotFound
from trimtab.evals.datasets import Item
from trimtab.evals.runs import NewRun, Result, RunStore, model_digest
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.evals.summary import run_scores, summarize
from trimtab.store.tables import audit_log

ML = Actor(key_id="key_ml", owner="ml@acme", tenant="acme")


def new_run(engine: Engine, tenant: str = "acme", target: str = "t" * 64, n: int = 3) -> NewRun:
    DatasetStore(engine).push(
        DatasetKey(tenant, "golden"),
        [Item(f"q{i}", {"q": str(i)}) for i in range(n)],
        message="m",
        actor=ML,
    )
    return NewRun(
        scope=tenant,
        suite="golden-suite",
        definition={"model": "gpt-mock", "dataset": "golden", "scorers": []},
        dataset_scope=tenant,
        dataset="golden",
        dataset_version=1,
        route_scope=None,
        route=None,
        route_version=None,
        model="gpt-mock",
        target_digest=target,
        items=n,
    )


def ok(item: str, digest: str, value: float = 1.0, output: str = "yes") -> Result:
    score = {"value": value, "passed": value >= 1, "reason": "r"}
    return Result(item, digest, output, None, {"correct": score}, latency_ms=10.0)


def failed(item: str, digest: str) -> Result:
    return Result(item, digest, None, "HTTP 500: down", {})


def test_a_result_is_written_once_and_the_run_counts_it(engine: Engine) -> None:
    store = RunStore(engine)
    run = store.create(new_run(engine), actor=ML)
    assert (run.status, run.done) == ("incomplete", 0)
    assert store.record(run, [ok("q0", "a" * 64), failed("q1", "b" * 64)]) == 2
    # a repeat (a retried batch, a resumed run) changes nothing
    assert store.record(run, [ok("q0", "a" * 64, value=0.0, output="other")]) == 0
    assert store.results(run.id)["q0"].output == "yes"
    got = store.get(run.id, "acme")
    assert (got.status, got.done, got.errors, got.cached) == ("incomplete", 2, 1, 0)
    store.record(run, [ok("q2", "c" * 64)])
    assert store.get(run.id, None).status == "complete"
    with engine.connect() as conn:
        actions = list(conn.scalars(select(audit_log.c.action)))
    assert "eval.run" in actions


def test_another_tenants_run_is_not_found(engine: Engine) -> None:
    store = RunStore(engine)
    run = store.create(new_run(engine), actor=ML)
    with pytest.raises(NotFound):
        store.get(run.id, "globex")
    assert [r.id for r in store.list("globex", None, 10)] == []
    assert [r.id for r in store.list("acme", "golden-suite", 10)] == [run.id]
    assert [r.id for r in store.list(None, "other-suite", 10)] == []


def test_the_cache_is_earlier_answers_of_the_same_target_and_tenant(engine: Engine) -> None:
    store = RunStore(engine)
    first = store.create(new_run(engine), actor=ML)
    store.record(first, [ok("q0", "a" * 64), failed("q1", "b" * 64)])
    second = store.create(new_run(engine), actor=ML)
    hits = store.cached(second, ["a" * 64, "b" * 64, "c" * 64])
    assert list(hits) == ["a" * 64]  # a failed call is never reused
    other_target = store.create(new_run(engine, target=model_digest("gpt-other")), actor=ML)
    assert store.cached(other_target, ["a" * 64]) == {}
    globex = store.create(new_run(engine, tenant="globex"), actor=ML)
    assert store.cached(globex, ["a" * 64]) == {}


def test_the_summary_gives_means_and_pass_rates_with_intervals() -> None:
    results = {f"q{i}": ok(f"q{i}", "d" * 64, value=1.0 if i < 15 else 0.0) for i in range(20)}
    results["q19"] = failed("q19", "e" * 64)
    items = [f"q{i}" for i in range(21)]  # q20 has no result yet
    summary = summarize(["correct"], items, results)
    (correct,) = summary["scorers"]
    assert correct["scored"] == 19 and correct["pass_rate"] == pytest.approx(15 / 19)
    low, high = correct["pass_rate_interval"]
    assert low < 15 / 19 < high
    mean_low, mean_high = correct["mean_interval"]
    assert mean_low < correct["mean"] < mean_high
    assert summary["failed_items"] == ["q19"]
    scores = run_scores(["correct"], items, results)["correct"]
    assert scores["q19"] is None and scores["q20"] is None
    assert scores["q0"] is not None and scores["q0"].passed


def test_a_scorer_error_on_an_item_is_not_a_zero() -> None:
    broken = Result("q0", "a" * 64, "text", None, {"correct": {"error": "no expected"}})
    summary = summarize(["correct"], ["q0"], {"q0": broken})
    (correct,) = summary["scorers"]
    assert (correct["scored"], correct["errors"], correct["mean"]) == (0, 1, None)
    assert run_scores(["correct"], ["q0"], {"q0": broken})["correct"]["q0"] is None


def test_a_run_reads_its_items_ids_in_order(engine: Engine) -> None:
    store = DatasetStore(engine)
    key = DatasetKey("acme", "ordered")
    items = [Item(f"z{9 - i}", {"q": str(i)}) for i in range(10)]
    store.push(key, items, message="m", actor=ML)
    assert store.item_ids(key, 1) == [i.id for i in store.items(key, 1)]
    assert store.item_ids(key, 1) == [f"z{9 - i}" for i in range(10)]
