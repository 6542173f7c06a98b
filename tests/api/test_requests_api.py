"""GET /api/requests through a real gateway, on SQLite and PostgreSQL: the listing, its
filters, its pages and its refusals (one request: test_request_detail_api.py; who may
read what: test_requests_access_api.py)."""

from __future__ import annotations

import math
from datetime import UTC

from tests.api.request_traffic import Sent, Traffic, ids_of, when
from tests.support import ADMIN_KEY, GLOBEX_VIEWER_KEY, VIEWER_KEY


def test_list_is_newest_first_and_holds_every_call(traffic: Traffic) -> None:
    rows = traffic.listed()
    assert ids_of(rows) == traffic.ids()  # the calls were made one after another
    times = [when(r) for r in rows]
    assert times == sorted(times, reverse=True)
    for row in rows:
        assert "request" not in row
        assert "response" not in row  # bodies only on the single-request view
        assert when(row).tzinfo is not None


def test_tags_given_three_ways_are_recorded(traffic: Traffic) -> None:
    by_id = {r["id"]: r for r in traffic.listed()}
    for s in traffic.sent:
        row = by_id[s.id]
        assert row["user.id"] == s.user, s
        assert row["session.id"] == s.session, s
        assert row["feature"] == s.feature, s
        assert row["tenant"] == s.tenant
        assert row["gen_ai.request.model"] == s.model
        assert row["provider"] == s.provider
        assert row["http.response.status_code"] == s.status
        assert row["streamed"] is s.streamed


FILTERS = [
    ("model", "gpt-mock", "model"),
    ("model", "sim-1", "model"),
    ("model", "gpt-500", "model"),
    ("model", "no-such-model", "model"),
    ("provider", "upstream", "provider"),
    ("provider", "sim", "provider"),
    ("tenant", "acme", "tenant"),
    ("tenant", "globex", "tenant"),
    ("user", "alice", "user"),
    ("user", "bob", "user"),
    ("user", "carol", "user"),
    ("session", "s-1", "session"),
    ("session", "meta-s", "session"),
    ("feature", "search", "feature"),
    ("feature", "chat", "feature"),
]


def test_every_filter(traffic: Traffic) -> None:
    for param, value, attribute in FILTERS:
        rows = traffic.listed(**{param: value})
        assert ids_of(rows) == traffic.ids(**{attribute: value}), (param, value)
    assert traffic.ids(model="no-such-model") == []


def test_text_in_the_bodies_is_searched_whatever_its_case(traffic: Traffic) -> None:
    def said(s: Sent, text: str) -> bool:
        return any(text in str(m.get("content", "")).lower() for m in s.body["messages"])

    expected = [s.id for s in reversed(traffic.sent) if said(s, "the sea")]
    assert expected
    assert ids_of(traffic.listed(q="THE SEA")) == expected
    assert ids_of(traffic.listed(q="the sea", tenant="globex")) == []
    # another tenant's key finds none of acme's, whatever it searches
    assert traffic.listed(GLOBEX_VIEWER_KEY, q="the sea") == []
    assert traffic.listed(q="no such words anywhere") == []


def test_filters_combine(traffic: Traffic) -> None:
    rows = traffic.listed(tenant="acme", feature="search", model="gpt-mock")
    assert ids_of(rows) == traffic.ids(tenant="acme", feature="search", model="gpt-mock")
    assert len(rows) == 1


def test_status_filters(traffic: Traffic) -> None:
    assert ids_of(traffic.listed(status="502")) == traffic.ids(status=502)
    assert ids_of(traffic.listed(status="400")) == traffic.ids(status=400)
    assert ids_of(traffic.listed(status="200")) == traffic.ids(status=200)
    assert traffic.listed(status="404") == []
    errors = [s.id for s in reversed(traffic.sent) if s.status >= 400]
    ok = [s.id for s in reversed(traffic.sent) if s.status < 400]
    assert ids_of(traffic.listed(status="error")) == errors
    assert ids_of(traffic.listed(status="ok")) == ok
    assert len(errors) == 3 and len(ok) == 7


def test_since_and_until(traffic: Traffic) -> None:
    rows = traffic.listed()
    oldest_first = list(reversed(rows))
    k = len(oldest_first) // 2
    pivot = oldest_first[k]
    at = when(pivot)
    newer = ids_of([r for r in rows if when(r) >= at])
    older = ids_of([r for r in rows if when(r) < at])
    assert newer and older
    assert newer == ids_of(rows[: len(rows) - k])

    iso = pivot["started_at"]
    zulu = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    naive = at.astimezone(UTC).replace(tzinfo=None).isoformat()  # naive means UTC
    unix = repr(at.timestamp())
    for value in (iso, zulu, naive, unix):
        assert ids_of(traffic.listed(since=value)) == newer, value
        assert ids_of(traffic.listed(until=value)) == older, value

    # a window: [second oldest, second newest)
    lo, hi = oldest_first[1]["started_at"], oldest_first[-2]["started_at"]
    assert ids_of(traffic.listed(since=lo, until=hi)) == ids_of(rows[2:-1])
    # whole seconds, far out
    assert traffic.listed(since=str(int(at.timestamp()) + 86_400)) == []
    assert ids_of(traffic.listed(until=str(int(at.timestamp()) + 86_400))) == ids_of(rows)
    assert ids_of(traffic.listed(since="2000-01-01")) == ids_of(rows)


def walk_pages(traffic: Traffic, key: str, params: dict[str, str]) -> None:
    everything = ids_of(traffic.listed(key, **params))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = traffic.get("/api/requests", key, **query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        seen.extend(ids_of(page["data"]))
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["data"]) == 2
        assert pages <= len(everything)
    assert seen == everything
    assert len(set(seen)) == len(seen)
    assert pages == max(1, math.ceil(len(everything) / 2))


def test_cursor_pagination_walks_every_row_once(traffic: Traffic) -> None:
    walk_pages(traffic, ADMIN_KEY, {})
    walk_pages(traffic, ADMIN_KEY, {"status": "ok"})  # 7 rows: the last page holds one
    walk_pages(traffic, ADMIN_KEY, {"model": "gpt-mock"})
    walk_pages(traffic, ADMIN_KEY, {"model": "no-such-model"})
    walk_pages(traffic, VIEWER_KEY, {})
    walk_pages(traffic, GLOBEX_VIEWER_KEY, {})


def test_default_limit_and_limit_one(traffic: Traffic) -> None:
    response = traffic.get("/api/requests", ADMIN_KEY, limit=1)
    page = response.json()
    assert ids_of(page["data"]) == traffic.ids()[:1]
    assert page["next_cursor"]
    page = traffic.get("/api/requests").json()  # default limit 50 holds all ten
    assert ids_of(page["data"]) == traffic.ids()
    assert page["next_cursor"] is None


BAD_PARAMETERS = [
    ("q", "x" * 257),
    ("cursor", "not-a-cursor"),
    ("cursor", "!!!"),
    ("cursor", "a"),
    ("cursor", "eyJhIjogMX0"),  # {"a": 1}
    ("cursor", "WzEsIDJd"),  # [1, 2]
    ("cursor", "WyJub3QgYSB0aW1lIiwgIngiXQ"),  # ["not a time", "x"]
    ("limit", "0"),
    ("limit", "-3"),
    ("limit", "1001"),
    ("limit", "ten"),
    ("limit", "2.5"),
    ("since", "yesterday"),
    ("since", "2025-13-45"),
    ("until", "soon"),
    ("status", "bad"),
    ("status", "-1"),
    # unix seconds beyond what a datetime holds
    ("since", "inf"),
    ("since", "-inf"),
    ("since", "1e20"),
    ("until", "99999999999999999999"),
]


def test_bad_parameters_are_400_naming_the_parameter(traffic: Traffic) -> None:
    for param, value in BAD_PARAMETERS:
        response = traffic.get("/api/requests", ADMIN_KEY, **{param: value})
        assert response.status_code == 400, (param, value, response.text)
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert error["param"] == param, (param, value)
        assert error["code"] == "invalid_parameter"
        assert param in error["message"]


def test_iso_times_out_of_range_in_utc_are_400(traffic: Traffic) -> None:
    for value in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        response = traffic.get("/api/requests", ADMIN_KEY, since=value)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "since"


# -- one request ---------------------------------------------------------------------------
