"""An incident's failed requests as dataset cases (learning/incident_cases.py), on SQLite and
PostgreSQL: which failed requests become items and how, and what is refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine

from tests.incidents.support import ONCALL
from trimtab.errors import Conflict, Invalid
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.incidents.failed import FailedRequest
from trimtab.incidents.store import IncidentStore, Opening
from trimtab.learning.incident_cases import case, push_failed_cases
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore


def _failed(
    i: int, body: object, route: str = "support-answer", status: int = 500
) -> RequestRecord:
    return RequestRecord(
        id=f"req_fail{i:020x}", started_at=time.time() + i * 0.001, api="openai",
        operation="chat", tenant="acme", request_model="gpt-mock", route=route, version="v1",
        status_code=status, duration_ms=20.0, error_message="upstream 503",
        request_body=None if body is None else orjson.dumps(body).decode(),
    )  # fmt: skip


def test_a_failed_request_becomes_its_variables_else_its_messages(engine: Engine) -> None:
    opened = datetime(2026, 12, 3, tzinfo=UTC).isoformat()
    incident = IncidentStore(engine).open(
        Opening("x", "other", routes=["r"]), scope="acme", by=ONCALL
    )

    def failed(body: dict[str, object] | None) -> FailedRequest:
        return FailedRequest("req_1", "r", "v2", 502, "boom", body, opened)

    item = case(incident, failed({"variables": {"q": "hi"}, "messages": [{"role": "user"}]}))
    assert item is not None and item.variables == {"q": "hi"} and item.id == "req_1"
    assert item.metadata["incident"] == incident.id and item.metadata["status_code"] == 502
    said = [{"role": "user", "content": "where is it?", "name": "x"}]
    item = case(incident, failed({"messages": said}))
    assert item is not None and item.messages == ({"role": "user", "content": "where is it?"},)
    assert case(incident, failed(None)) is None
    tool = [{"role": "tool", "content": "x"}]  # not a dataset's message
    assert case(incident, failed({"messages": tool})) is None


def test_the_failed_requests_on_its_routes_are_pushed_once(engine: Engine) -> None:
    incidents, datasets = IncidentStore(engine), DatasetStore(engine)
    incident = incidents.open(
        Opening("answers failing", "vendor_outage", routes=["support-answer"]),
        scope="acme", by=ONCALL, now=datetime.now(UTC) - timedelta(minutes=1),
    )  # fmt: skip
    TelemetryStore(engine).write([
        _failed(0, {"variables": {"q": "first"}}),
        _failed(1, {"messages": [{"role": "user", "content": "second"}]}),
        _failed(2, None),  # no body recorded: no case
        _failed(3, {"variables": {"q": "elsewhere"}}, route="billing"),  # another route
        _failed(4, {"variables": {"q": "fine"}}, status=200),  # not failed
    ])  # fmt: skip
    ref, detail = push_failed_cases(incidents, datasets, incident, None, "cases", ONCALL)
    assert ref == f"incident-{incident.id}@v1" and detail["items"] == 2 and detail["created"]
    items = datasets.items(DatasetKey("acme", f"incident-{incident.id}"), 1)
    assert sorted(i.id for i in items) == [f"req_fail{0:020x}", f"req_fail{1:020x}"]
    again, detail = push_failed_cases(incidents, datasets, incident, None, "again", ONCALL)
    assert again == ref and not detail["created"]  # the same items: no new version


def test_what_is_refused(engine: Engine) -> None:
    incidents, datasets = IncidentStore(engine), DatasetStore(engine)
    no_route = incidents.open(Opening("x", "other"), scope="acme", by=ONCALL)
    with pytest.raises(Conflict, match="names no route"):
        push_failed_cases(incidents, datasets, no_route, None, "m", ONCALL)
    quiet = incidents.open(Opening("y", "other", routes=["quiet"]), scope="acme", by=ONCALL)
    with pytest.raises(Invalid, match="dataset") as bad:
        push_failed_cases(incidents, datasets, quiet, "no spaces allowed", "m", ONCALL)
    assert bad.value.param == "dataset"
    with pytest.raises(Conflict, match="has no failed request with a recorded body"):
        push_failed_cases(incidents, datasets, quiet, None, "m", ONCALL)
