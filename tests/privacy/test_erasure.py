"""Erasure and access of one user on SQLite and PostgreSQL (privacy/erasure.py): requests,
their feedback and eval results, dataset items shared by several versions and datasets,
the audit row; another user's and another tenant's rows stay."""

from __future__ import annotations

import time

from sqlalchemy import Engine, func, select

from trimtab.audit.log import Actor, AuditFilter, AuditLog
from trimtab.evals.datasets import Item
from trimtab.evals.runs import NewRun, Result, RunStore
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.privacy.erasure import erase, export
from trimtab.rollouts.feedback import FeedbackStore
from trimtab.store.tables import dataset_items, requests
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

ADMIN = Actor(key_id="key_admin", owner="ops@acme", tenant="acme")


def rec(n: int, user: str, tenant: str) -> RequestRecord:
    return RequestRecord(
        id=f"req_{tenant}_{user}_{n}",
        started_at=time.time() - n,
        api="openai",
        operation="chat",
        tenant=tenant,
        user=user,
        request_model="gpt-mock",
        request_body='{"messages": []}',
    )


def seed(engine: Engine) -> None:
    records = [rec(n, u, t) for n in range(7) for u in ("u1", "u2") for t in ("acme", "globex")]
    TelemetryStore(engine).write(records)
    feedback = FeedbackStore(engine)
    for request_id in ("req_acme_u1_0", "req_acme_u1_1", "req_acme_u2_0"):
        feedback.add(request_id, None, 0.0, "bad", False, ADMIN)
    datasets = DatasetStore(engine)
    mine = Item("q1", messages=({"role": "user", "content": "hi"},), metadata={"user": "u1"})
    other = Item("q2", messages=({"role": "user", "content": "yo"},), metadata={"user": "u2"})
    third = Item("q3", messages=({"role": "user", "content": "hey"},))
    key = DatasetKey("acme", "support")
    datasets.push(key, [mine, other], message="v1", actor=ADMIN)
    datasets.push(key, [mine, other, third], message="v2", actor=ADMIN)
    datasets.push(DatasetKey("globex", "faq"), [mine], message="v1", actor=ADMIN)
    runs = RunStore(engine)
    run = runs.create(
        NewRun("acme", "s", {}, "acme", "support", 2, None, None, None, "gpt-mock", "d", 3),
        actor=ADMIN,
    )
    results = [
        Result(item, "rd", f"answer {item}", None, {}, request_id=rid)
        for item, rid in (("q1", None), ("q2", None), ("q3", "req_acme_u1_2"))
    ]
    runs.record(run, results)


def count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)  # type: ignore[arg-type]


def test_erase_one_user_of_one_tenant(engine: Engine) -> None:
    seed(engine)
    audit = AuditLog(engine)
    before = list(export(engine, "u1", "acme", batch=3))
    kinds = [line["kind"] for line in before]
    assert kinds.count("request") == 7 and kinds.count("feedback") == 2
    assert kinds.count("dataset_item") == 1 and kinds.count("eval_result") == 2
    done = erase(engine, audit, ADMIN, "u1", "acme", batch=3)
    assert done.requests == 7 and done.feedback == 2
    assert done.eval_results == 2  # q3's (on u1's request) and q1's (u1's item)
    assert done.dataset_items == 2  # q1 left acme's v1 and v2; globex's copy stays
    assert done.dataset_item_contents == 0
    c = requests.c
    assert count(engine, requests, c.user_id == "u1", c.tenant == "acme") == 0
    assert count(engine, requests, c.user_id == "u1", c.tenant == "globex") == 7
    assert count(engine, requests, c.user_id == "u2") == 14
    datasets = DatasetStore(engine)
    key = DatasetKey("acme", "support")
    assert [i.id for i in datasets.items(key, 2)] == ["q2", "q3"]
    assert datasets.version(key, 2).items == 2
    assert [i.id for i in datasets.items(DatasetKey("globex", "faq"), 1)] == ["q1"]
    assert list(export(engine, "u1", "acme")) == []
    rows, _ = audit.query(AuditFilter(action="privacy.erase"), 10)
    assert len(rows) == 1 and rows[0]["target"] == "user:u1"
    assert rows[0]["detail"]["erased"] == done.to_json()
    again = erase(engine, audit, ADMIN, "u1", "acme")
    assert again.requests == again.dataset_items == 0


def test_erase_one_user_everywhere(engine: Engine) -> None:
    seed(engine)
    done = erase(engine, AuditLog(engine), ADMIN, "u1", None, batch=4)
    assert done.requests == 14 and done.dataset_items == 3 and done.dataset_item_contents == 1
    assert count(engine, dataset_items) == 2
    assert count(engine, requests, requests.c.user_id == "u1") == 0
    assert count(engine, requests) == 14
