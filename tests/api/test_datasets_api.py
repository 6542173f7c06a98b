"""The datasets API through a real gateway, on SQLite and PostgreSQL: push (JSONL and CSV,
content-addressed), list, versions, items, diff; bad files; tenants; roles; the audit row."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_OPERATOR_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.client import AsyncClient, Client, TrimtabError
from trimtab.evals.datasets import dataset_digest, parse
from trimtab.store.tables import audit_log, dataset_items, dataset_versions, datasets


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=ROUTE_KEYS)


def jsonl(*rows: object) -> str:
    return "".join(orjson.dumps(r).decode() + "\n" for r in rows)


V1 = jsonl(
    {"id": "refund", "variables": {"q": "Can I get a refund?"}, "expected": "30 days"},
    {"id": "hours", "variables": {"q": "When are you open?"}, "tags": ["golden"]},
    {"messages": [{"role": "user", "content": "hi"}], "expected": ["hello", "hi"]},
)
V2 = jsonl(
    {"id": "refund", "variables": {"q": "Can I get a refund?"}, "expected": "within 30 days"},
    {"messages": [{"role": "user", "content": "hi"}], "expected": ["hello", "hi"]},
    {"id": "ship", "variables": {"q": "Do you ship abroad?"}, "metadata": {"from": "prod"}},
)


def push(
    running: Running,
    name: str,
    content: str,
    key: str = OPERATOR_KEY,
    fmt: str = "jsonl",
    **extra: Any,
) -> httpx.Response:
    body = {"format": fmt, "content": content, "message": "why", **extra}
    return httpx.post(
        f"{running.url}/api/datasets/{name}/versions", json=body, headers=auth(key), timeout=30
    )


def get(running: Running, path: str, key: str = VIEWER_KEY, **params: Any) -> httpx.Response:
    return httpx.get(running.url + path, params=params, headers=auth(key), timeout=30)


def error(response: httpx.Response) -> dict[str, Any]:
    detail: dict[str, Any] = response.json()["error"]
    return detail


def count(running: Running, table: Any) -> int:
    with running.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def test_push_read_and_diff_round_trip(running: Running) -> None:
    first = push(running, "support-golden", V1)
    assert first.status_code == 200, first.text
    made = first.json()
    assert {k: made[k] for k in ("dataset", "tenant", "version", "items", "created")} == {
        "dataset": "support-golden",
        "tenant": "acme",
        "version": 1,
        "items": 3,
        "created": True,
    }
    assert made["digest"] == dataset_digest(parse(V1, "jsonl", "x"))
    assert (made["author"], made["message"]) == ("ml@acme", "why")
    second = push(running, "support-golden", V2).json()
    assert (second["version"], second["created"]) == (2, True)

    listed = get(running, "/api/datasets").json()["data"]
    assert [(d["dataset"], d["version"]) for d in listed] == [("support-golden", 2)]
    versions = get(running, "/api/datasets/support-golden").json()
    assert (versions["dataset"], versions["tenant"]) == ("support-golden", "acme")
    assert [v["version"] for v in versions["data"]] == [1, 2]

    for asked in ("1", "v1"):
        shown = get(running, f"/api/datasets/support-golden/versions/{asked}").json()
        assert shown["version"] == 1
        assert [i["id"] for i in shown["data"]][:2] == ["refund", "hours"]
        assert shown["data"][0] == {
            "id": "refund",
            "variables": {"q": "Can I get a refund?"},
            "expected": "30 days",
        }
        assert shown["data"][2]["messages"] == [{"role": "user", "content": "hi"}]
    latest = get(running, "/api/datasets/support-golden/versions/latest").json()
    assert (latest["version"], latest["digest"]) == (2, second["digest"])
    assert latest["data"][2]["metadata"] == {"from": "prod"}

    changes = get(running, "/api/datasets/support-golden/diff").json()
    assert changes == {
        "dataset": "support-golden",
        "tenant": "acme",
        "from": 1,
        "to": 2,
        "added": ["ship"],
        "removed": ["hours"],
        "changed": ["refund"],
    }
    back = get(running, "/api/datasets/support-golden/diff", **{"from": "v2", "to": "1"}).json()
    assert (back["added"], back["removed"], back["changed"]) == (["hours"], ["ship"], ["refund"])
    only_one = get(running, "/api/datasets/support-golden/diff", to="1")
    assert only_one.status_code == 400
    assert error(only_one)["param"] == "from"

    missing = get(running, "/api/datasets/support-golden/versions/7")
    assert missing.status_code == 404
    assert error(missing)["message"].startswith(
        "dataset 'support-golden' has no version 7 (it has 1..2)"
    )
    assert error(missing)["param"] == "version"
    for asked in ("newest", "0", "v", "\u00b2"):
        bad = get(running, f"/api/datasets/support-golden/versions/{asked}")
        assert bad.status_code == 400, asked
        assert error(bad)["message"].startswith(
            f"version: '{asked}' is not a version like 3, v3 or latest"
        )

    with running.engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "dataset.push")).all()
    assert [(r.target, r.tenant, r.actor) for r in rows] == [
        ("acme/support-golden", "acme", "ml@acme"),
        ("acme/support-golden", "acme", "ml@acme"),
    ]


def test_the_same_content_again_is_the_same_version(running: Running) -> None:
    first = push(running, "golden", V1).json()
    push(running, "golden", V2)
    again = push(running, "golden", V1, message="once more")
    assert again.status_code == 200, again.text
    assert (again.json()["version"], again.json()["created"]) == (1, False)
    assert again.json()["digest"] == first["digest"]
    assert count(running, dataset_versions) == 2
    assert count(running, dataset_items) == 5  # the item both versions hold is stored once
    assert [v["version"] for v in get(running, "/api/datasets/golden").json()["data"]] == [1, 2]


def test_export_and_push_back_is_the_same_digest(running: Running) -> None:
    made = push(running, "golden", V1).json()
    shown = get(running, "/api/datasets/golden/versions/1").json()
    exported = jsonl(*shown["data"])
    again = push(running, "golden", exported).json()
    assert (again["version"], again["created"], again["digest"]) == (1, False, made["digest"])


def test_csv_columns_map_to_variables_expected_tags_and_metadata(running: Running) -> None:
    text = 'id,question,expected,tags,metadata.source\nr1,"refund, please?",30 days,a;b,prod\n'
    made = push(running, "from-csv", text, fmt="csv", source="cases.csv")
    assert made.status_code == 200, made.text
    items = get(running, "/api/datasets/from-csv/versions/latest").json()["data"]
    assert items == [
        {
            "id": "r1",
            "variables": {"question": "refund, please?"},
            "expected": "30 days",
            "tags": ["a", "b"],
            "metadata": {"source": "prod"},
        }
    ]


def test_a_bad_file_stores_nothing_and_names_every_line(running: Running) -> None:
    text = "\n".join(
        [
            orjson.dumps({"id": "ok", "variables": {"q": "x"}}).decode(),
            "{not json",
            orjson.dumps({"variables": {"q": "y"}, "messages": [{"role": "user"}]}).decode(),
            orjson.dumps({"id": "ok", "variables": {"q": "z"}}).decode(),
            orjson.dumps({"variables": {"q": "w"}, "tags": "golden"}).decode(),
        ]
    )
    response = push(running, "golden", text, source="items.jsonl")
    assert response.status_code == 400, response.text
    detail = error(response)
    assert detail["code"] == "invalid_dataset"
    lines = detail["message"].split(" (request id:")[0].split("\n")
    assert lines[0].startswith("items.jsonl line 2: not valid JSON")
    assert "items.jsonl line 3: give 'variables' or 'messages', not both" in lines
    assert "items.jsonl line 3: messages[0].content must be a string or a list of parts" in lines
    assert "items.jsonl line 4: id 'ok' is already used on line 1" in lines
    assert "items.jsonl line 5: 'tags' must be a list of non-empty strings" in lines
    assert len(lines) == 5
    assert (count(running, datasets), count(running, dataset_versions)) == (0, 0)
    assert count(running, dataset_items) == 0
    assert get(running, "/api/datasets/golden").status_code == 404


def test_a_nul_in_an_item_is_refused_on_either_store(running: Running) -> None:
    response = push(running, "golden", jsonl({"id": "a\u0000b", "variables": {}}))
    assert response.status_code == 400, response.text
    assert "must not contain a NUL" in error(response)["message"]
    assert count(running, dataset_versions) == 0


def test_body_fields_are_checked(running: Running) -> None:
    cases = [
        ({"format": "xml", "content": V1, "message": "m"}, "format"),
        ({"format": "jsonl", "message": "m"}, "content"),
        ({"format": "jsonl", "content": V1, "message": " "}, "message"),
        ({"format": "jsonl", "content": V1, "message": "m", "extra": 1}, "extra"),
    ]
    for body, param in cases:
        response = httpx.post(
            f"{running.url}/api/datasets/golden/versions", json=body, headers=auth(OPERATOR_KEY)
        )
        assert response.status_code == 400, (body, response.text)
        assert error(response)["param"] == param
    bad_name = push(running, "-golden", V1)
    assert bad_name.status_code == 400
    assert error(bad_name)["param"] == "dataset"
    assert count(running, datasets) == 0


def test_tenants_see_their_own_and_the_shared_datasets(running: Running) -> None:
    assert push(running, "golden", V1).status_code == 200  # acme's
    assert push(running, "shared-set", V2, ADMIN_KEY, tenant="").status_code == 200
    globex = push(running, "globex-only", V2, ADMIN_KEY, tenant="globex")
    assert (globex.status_code, globex.json()["tenant"]) == (200, "globex")

    acme = get(running, "/api/datasets").json()["data"]
    assert sorted((d["dataset"], d["tenant"]) for d in acme) == [
        ("golden", "acme"),
        ("shared-set", None),
    ]
    seen = get(running, "/api/datasets", GLOBEX_VIEWER_KEY).json()["data"]
    assert sorted((d["dataset"], d["tenant"]) for d in seen) == [
        ("globex-only", "globex"),
        ("shared-set", None),
    ]
    everything = get(running, "/api/datasets", ADMIN_KEY).json()["data"]
    assert len(everything) == 3
    assert get(running, "/api/datasets", tenant="globex").status_code == 403

    for path in ("/api/datasets/golden", "/api/datasets/golden/versions/1"):
        hidden = get(running, path, GLOBEX_VIEWER_KEY)
        assert hidden.status_code == 404, path
        assert error(hidden)["message"].startswith("no dataset named 'golden'")
        assert get(running, path, GLOBEX_VIEWER_KEY, tenant="acme").status_code == 404
    assert get(running, "/api/datasets/golden/diff", GLOBEX_VIEWER_KEY).status_code == 404
    assert get(running, "/api/datasets/golden", ADMIN_KEY, tenant="acme").status_code == 200
    assert get(running, "/api/datasets/globex-only", ADMIN_KEY, tenant="globex").status_code == 200
    shared = get(running, "/api/datasets/shared-set/versions/1", GLOBEX_VIEWER_KEY).json()
    assert (shared["tenant"], shared["items"]) == (None, 3)

    # a tenant's own dataset of a shared name shadows the shared one for that tenant only
    own = push(running, "shared-set", V1, GLOBEX_OPERATOR_KEY).json()
    assert (own["tenant"], own["version"], own["created"]) == ("globex", 1, True)
    assert get(running, "/api/datasets/shared-set", GLOBEX_VIEWER_KEY).json()["tenant"] == "globex"
    assert get(running, "/api/datasets/shared-set").json()["tenant"] is None
    assert (
        get(running, "/api/datasets/shared-set", GLOBEX_VIEWER_KEY, tenant="").json()["tenant"]
        is None
    )

    refused = push(running, "x", V1, GLOBEX_OPERATOR_KEY, tenant="acme")
    assert refused.status_code == 403
    assert "may not push to tenant 'acme'" in error(refused)["message"]
    to_shared = push(running, "x", V1, GLOBEX_OPERATOR_KEY, tenant="")
    assert to_shared.status_code == 403
    assert "the shared datasets" in error(to_shared)["message"]


def test_roles(running: Running) -> None:
    viewer = push(running, "golden", V1, VIEWER_KEY)
    assert viewer.status_code == 403
    assert "role 'viewer'" in error(viewer)["message"]
    assert count(running, datasets) == 0
    assert push(running, "golden", V1, APP_KEY).status_code == 403
    assert push(running, "golden", V1).status_code == 200
    for path in ("/api/datasets", "/api/datasets/golden", "/api/datasets/golden/versions/1"):
        assert get(running, path, APP_KEY).status_code == 403, path
        assert get(running, path, VIEWER_KEY).status_code == 200, path
    nobody = httpx.get(f"{running.url}/api/datasets", timeout=10)
    assert nobody.status_code == 401


def test_both_clients_push_and_read(running: Running) -> None:
    with Client(running.url, OPERATOR_KEY) as client:
        made = client.push_dataset("golden", V1, "first", source="golden.jsonl")
        assert (made["version"], made["created"]) == (1, True)
        client.push_dataset("golden", V2, "second")
        assert [d["dataset"] for d in client.datasets()] == ["golden"]
        assert [v["version"] for v in client.dataset_versions("golden")] == [1, 2]
        assert client.dataset_version("golden", "v1")["data"][1]["id"] == "hours"
        assert client.dataset_diff("golden")["added"] == ["ship"]
        with pytest.raises(TrimtabError) as refused:
            client.push_dataset("golden", "{", "bad", source="x.jsonl")
        assert (refused.value.status, refused.value.code) == (400, "invalid_dataset")
        assert refused.value.message.startswith("x.jsonl line 1: not valid JSON")

    async def both() -> None:
        async with AsyncClient(running.url, OPERATOR_KEY) as client:
            again = await client.push_dataset("golden", V1, "again")
            assert (again["version"], again["created"]) == (1, False)
            shown = await client.dataset_version("golden")
            assert shown["version"] == 2
            diffed = await client.dataset_diff("golden", 2, 1)
            assert (diffed["from"], diffed["to"], diffed["added"]) == (2, 1, ["hours"])
            assert len(await client.dataset_versions("golden")) == 2
            assert len(await client.datasets(tenant="acme")) == 1

    asyncio.run(both())


def test_the_body_may_hold_16_mib(running: Running) -> None:
    rows = [{"id": f"case-{i}", "variables": {"q": "x" * 1000}} for i in range(1100)]
    big = jsonl(*rows)
    assert len(big) > 1024 * 1024  # far past the 64 KiB of the other bodies
    made = push(running, "big", big)
    assert made.status_code == 200, made.text
    assert made.json()["items"] == 1100
    over = push(running, "big", "x" * (16 * 1024 * 1024))
    assert over.status_code == 413, over.text
    assert error(over)["code"] == "request_too_large"
