"""A NUL character in what a client sent (a model name, a tag, a recorded body) is kept as
U+FFFD: PostgreSQL refuses NUL in text, and one such record would otherwise fail its whole
batch, and the batch's replay, for ever."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select

from tests.support import ADMIN_KEY, APP_KEY, KEYS, GatewayFactory, auth, new_database, wait_for
from tests.telemetry.support import rec
from trimtab.store.tables import requests, rollups
from trimtab.telemetry.store import TelemetryStore
from trimtab.testing.postgres_server import PostgresServer


def test_a_record_with_nul_characters_is_stored_with_the_rest_of_its_batch(
    engine: Engine,
) -> None:
    store = TelemetryStore(engine)
    bad = rec(
        1,
        request_model="gpt\x00mock",
        feature="f\x00",
        request_body='{"x": "\x00"}',
        attributes={"note": "a\x00b"},
    )
    assert store.write([bad, rec(2), rec(3)]) == 3
    with engine.connect() as conn:
        row = conn.execute(select(requests).where(requests.c.id == bad.id)).one()
        models = set(conn.scalars(select(rollups.c.model)))
    assert (row.request_model, row.feature) == ("gpt\ufffdmock", "f\ufffd")
    assert row.request_body == '{"x": "\ufffd"}'
    assert row.attributes == {"note": "a\x00b"}  # JSON escapes it: \\u0000
    assert models == {"gpt\ufffdmock", "gpt-mock"}


@pytest.mark.postgres
def test_a_nul_model_name_through_the_gateway_is_recorded_on_postgresql(
    gateway: GatewayFactory, postgres_server: PostgresServer
) -> None:
    running = gateway(store=new_database(postgres_server), keys=KEYS)
    body = orjson.dumps({"model": "sim\u00001", "messages": [{"role": "user", "content": "hi"}]})
    found: dict[str, Any] = {}
    with httpx.Client(base_url=running.url, timeout=30) as client:
        sent = client.post("/v1/chat/completions", content=body, headers=auth(APP_KEY))
        assert sent.status_code == 404, sent.text
        rid = sent.headers["x-trimtab-request-id"]

        def recorded() -> bool:
            got = client.get(f"/api/requests/{rid}", headers=auth(ADMIN_KEY))
            found.update(got.json() if got.status_code == 200 else {})
            return bool(found)

        wait_for(recorded)
    assert found["gen_ai.request.model"] == "sim\ufffd1"
