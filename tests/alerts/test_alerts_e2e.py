"""End to end through the server: requests spend a budget past 80 % and 100 % while the
alert sink is down; the alert opens as a ticket and escalates to a page; the server stops
with both notifications undelivered; a new server on the same store delivers them, in
order, once the sink is back."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import Engine

from tests.alerts.support import receiving
from tests.support import APP_KEY, KEYS, GatewayFactory
from trimtab.alerts import outbox_store
from trimtab.store.engine import make_engine
from trimtab.testing.servers import free_port

PRICING = {"input_per_mtok": 1.5, "output_per_mtok": 75.0}
# "alert question NN" is 3 words; the mock answers "mock reply to: alert question NN"
COST = (3 * 1.5 + 6 * 75.0) / 1e6


def config(port: int) -> dict[str, Any]:
    return {
        "keys": KEYS,
        "models": {"priced": {"provider": "upstream", "model": "priced", "pricing": PRICING}},
        "budgets": [
            {"scope": "tenant:acme", "period": "day", "usd": 2.5 * COST, "on_exceed": "alert"}
        ],
        "alerts": {
            "sinks": {"hook": {"kind": "webhook", "url": f"http://127.0.0.1:{port}/alerts"}},
            "outbox": {"interval_s": 0.05, "base_backoff_s": 0.05, "max_backoff_s": 0.2},
        },
    }


async def rows_when(engine: Engine, done: Any, rounds: int = 750) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for _ in range(rounds):
        rows = await asyncio.to_thread(outbox_store.outbox_rows, engine)
        if done(rows):
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"the outbox never got there: {rows}")


async def test_a_budget_alert_raised_while_the_sink_is_down_arrives_after_a_restart(
    gateway: GatewayFactory, sqlite_url: str
) -> None:
    port = free_port()
    first = await asyncio.to_thread(gateway, store=sqlite_url, **config(port))
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
        for i in range(3):  # 1, 2 (80 %), 3 (120 %: 100 % and 110 %) times COST
            question = {"role": "user", "content": f"alert question {10 + i}"}
            r = await http.post(
                "/v1/chat/completions",
                json={"model": "priced", "messages": [question]},
                headers={"authorization": f"Bearer {APP_KEY}"},
            )
            assert r.status_code == 200, r.text
    engine = make_engine(sqlite_url)
    try:
        tried = await rows_when(engine, lambda rows: len(rows) == 2 and rows[0]["last_error"])
        assert [(r["event"], r["status"]) for r in tried] == [("trigger", "pending")] * 2
        assert tried[0]["last_error"].startswith("ClientConnectorError")
        assert tried[1]["attempts"] == 0  # the page waits behind the ticket, to the same sink
        await asyncio.to_thread(first.server.stop)

        async with receiving(port) as rec:
            await asyncio.to_thread(gateway, store=sqlite_url, **config(port))
            done = await rows_when(
                engine, lambda rows: {r["status"] for r in rows} == {"delivered"}
            )
        assert len(done) == 2
        bodies = rec.bodies("/alerts")
        assert len(bodies) == 2  # each delivered once
        ticket, page = (b["alert"] for b in bodies)
        assert ticket["id"] == page["id"] and ticket["source"] == "budget"
        assert (ticket["severity"], page["severity"]) == ("ticket", "page")  # in order
        assert page["labels"] == {"budget": "tenant:acme", "period": "day", "tenant": "acme"}
        assert page["details"]["threshold"] in (1.0, 1.1)
    finally:
        engine.dispose()
