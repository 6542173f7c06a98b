"""Text search in the stored bodies (telemetry/queries.list_requests with a text filter), on
SQLite and PostgreSQL: case-insensitive, the LIKE wildcards taken literally, and a bounded
read per page whose cursor goes on from the last request read."""

from __future__ import annotations

import time

import orjson
from sqlalchemy import Engine

from tests.telemetry.support import open_store
from trimtab.telemetry.queries import RequestFilter, list_requests
from trimtab.telemetry.record import RequestRecord

NOW = time.time()


def _record(i: int, question: str, answer: str | None = None) -> RequestRecord:
    body = orjson.dumps({"messages": [{"role": "user", "content": question}]}).decode()
    return RequestRecord(
        id=f"req_search{i:016x}", started_at=NOW - 100 + i, api="openai", operation="chat",
        tenant="acme", request_model="gpt-mock", status_code=200, duration_ms=10.0,
        request_body=body, response_body=answer,
    )  # fmt: skip


def _ids(rows: list[dict[str, object]]) -> list[object]:
    return [r["id"] for r in rows]


def test_text_is_found_in_requests_and_answers_whatever_its_case(
    store_url: str, engines: list[Engine]
) -> None:
    store = open_store(store_url, engines)
    store.write([
        _record(0, "Where is my REFUND?"),
        _record(1, "hello", answer='{"content": "your refund is on its way"}'),
        _record(2, "100% sure_thing"),
        _record(3, "100 percent sure thing"),
        _record(4, "nothing here"),
    ])  # fmt: skip
    rows, cursor = list_requests(store.engine, RequestFilter(text="refund"), 50)
    assert _ids(rows) == [f"req_search{i:016x}" for i in (1, 0)] and cursor is None
    # % and _ are the text, not LIKE's wildcards
    rows, _ = list_requests(store.engine, RequestFilter(text="100% sure_"), 50)
    assert _ids(rows) == [f"req_search{2:016x}"]
    # with the other filters: another tenant's requests are not searched
    rows, _ = list_requests(store.engine, RequestFilter(text="refund", tenant="globex"), 50)
    assert rows == []


def test_a_page_reads_a_bounded_number_of_requests_and_its_cursor_goes_on(
    store_url: str, engines: list[Engine]
) -> None:
    """20 requests, the needle in the 3rd and 17th newest; 5 read a page: pages of 0 or 1
    match, each with a cursor after the last request read, until none is left."""
    store = open_store(store_url, engines)
    store.write([_record(i, "needle" if i in (17, 3) else "hay") for i in range(20)])
    found: list[object] = []
    sizes = []
    cursor: str | None = None
    for _ in range(10):
        rows, cursor = list_requests(store.engine, RequestFilter(text="needle"), 50, cursor, 5)
        found += _ids(rows)
        sizes.append(len(rows))
        if cursor is None:
            break
    assert found == [f"req_search{17:016x}", f"req_search{3:016x}"]
    assert sizes == [1, 0, 0, 1]  # newest 16..20 hold 17; 11..15, 6..10 none; 1..5 hold 3
    # more matches than a page in the requests read: the cursor follows the last match
    store.write([_record(100 + i, "needle") for i in range(4)])
    rows, cursor = list_requests(store.engine, RequestFilter(text="needle"), 2, None, 5)
    assert len(rows) == 2 and cursor is not None
    rest, _ = list_requests(store.engine, RequestFilter(text="needle"), 2, cursor, 5)
    assert not set(_ids(rows)) & set(_ids(rest))
