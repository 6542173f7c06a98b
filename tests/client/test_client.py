"""`trimtab.Client` and `AsyncClient` against a real server on a real socket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.rollouts.support import routes_yaml
from tests.support import ADMIN_KEY, APP_KEY, OPERATOR_KEY, VIEWER_KEY, Running, run_backed_evals
from trimtab import AsyncClient, Client, TrimtabError
from trimtab.client import Page


def chat(running: Running, n: int, feature: str = "support") -> list[str]:
    """`n` model calls through the gateway; their request ids."""
    ids = []
    with httpx.Client(timeout=30) as http:
        for i in range(n):
            resp = http.post(
                running.url + "/v1/chat/completions",
                json={"model": "sim-1", "messages": [{"role": "user", "content": f"hi {i}"}]},
                headers={"authorization": f"Bearer {APP_KEY}", "x-trimtab-feature": feature},
            )
            assert resp.status_code == 200, resp.text
            ids.append(resp.headers["x-trimtab-request-id"])
    return ids


def test_routes_rollouts_and_attestations(running: Running) -> None:
    with Client(running.url, OPERATOR_KEY) as tt:
        first = tt.apply(routes_yaml("sim-1", tier=2), "launch", source="routes.yaml")
        assert [(r["route"], r["status"], r["version"]) for r in first] == [("faq", "created", 1)]
        tt.apply(routes_yaml("sim-1", tier=2, greeting="Hi"), "friendlier")
        assert [r["name"] for r in tt.routes()] == ["faq"]
        assert tt.route("faq")["stable_version"] == 1
        assert [v["version"] for v in tt.versions("faq")] == ["v2", "v1"]
        assert tt.version("faq", 2)["message"] == "friendlier"
        assert tt.version("faq", "v1")["version"] == "v1"
        changes = tt.diff("faq")
        assert (changes["from"], changes["to"]) == ("v1", "v2")
        assert "+Hi. Answer about {{topic}}." in changes["unified"]

        with pytest.raises(TrimtabError) as refused:
            tt.start_rollout("faq", "v2", reason="try")
        assert refused.value.status == 409 and refused.value.code == "gate_refused"
        assert "a passing eval attestation" in refused.value.message

        made = tt.attest("faq", "v2", kind="eval", result="pass", note="92 %", url="https://ci/1")
        assert (made["kind"], made["result"], made["by"]) == ("eval", "pass", "ml@acme")
    run_backed_evals(running.url, OPERATOR_KEY, "faq", candidate=2)  # tier 2: run-backed only
    with Client(running.url, ADMIN_KEY) as admin:
        admin.attest("faq", 2, kind="approval", result="pass")
    with Client(running.url, OPERATOR_KEY) as tt:
        started = tt.start_rollout("faq", 2, plan="fast", reason="try")
        assert (started["status"], started["candidate_version"]) == ("running", 2)
        assert tt.pause("faq", "lunch")["status"] == "paused"
        assert tt.resume("faq", "back")["status"] == "running"
        assert tt.rollout("faq")["id"] == started["id"]
        back = tt.rollback("faq", "on-call")
        assert back == {"route": "faq", "stable_version": 1, "override_gate": False}
        assert tt.rollout("faq")["status"] == "rolled_back"
        kinds = [e["kind"] for e in tt.timeline("faq")]
        assert kinds[:2] == ["apply", "apply"] and "attestation" in kinds and "rollback" in kinds


def test_keys_feedback_requests_summary_costs_and_audit(running: Running) -> None:
    ids = chat(running, 3)
    assert running.wait_for_rows(3) == 3
    with Client(running.url, ADMIN_KEY) as tt:
        made = tt.create_key(tenant="acme", role="viewer", owner="dana@acme", expires_in="1d")
        assert made["key"] and made["status"] == "active"
        assert made["id"] in {k["id"] for k in tt.keys("acme")}
        assert tt.key(made["id"])["owner"] == "dana@acme"
        assert tt.revoke_key(made["id"])["status"] == "revoked"

        page = tt.requests(feature="support", limit=2)
        assert isinstance(page, Page) and len(page.data) == 2 and page.next_cursor
        assert [r["id"] for r in page.data] == ids[::-1][:2]  # newest first
        assert tt.request(ids[0])["request"]["messages"][0]["content"] == "hi 0"

        tt.feedback(ids[0], thumbs="down", comment="wrong")
        summary = tt.summary(window="1h", group_by="feature")
        assert summary["group_by"] == "feature"
        assert {g["feature"]: g["count"] for g in summary["groups"]} == {"support": 3}
        costs = tt.costs(window="1d", group_by="model")
        assert costs["total"]["requests"] == 3
        assert "data" in tt.budgets()
        assert tt.budget_events() == []
        actions = [row["action"] for row in tt.iter_audit(limit=1)]
        assert actions == ["feedback.add", "key.revoke", "key.create"]  # newest first, 3 pages


def test_iterating_requests_follows_the_cursor_over_pages(running: Running) -> None:
    ids = chat(running, 5)
    assert running.wait_for_rows(5) == 5
    with Client(running.url, VIEWER_KEY) as tt:
        assert [r["id"] for r in tt.iter_requests(limit=2)] == ids[::-1]  # 3 pages
        assert [r["id"] for r in tt.iter_requests(limit=2, status="error")] == []
        # "hi 3" is in one request's body, and "HI 3" finds it
        assert [r["id"] for r in tt.iter_requests(limit=2, text="HI 3")] == [ids[3]]

    async def collect() -> list[str]:
        async with AsyncClient(running.url, VIEWER_KEY) as tt:
            return [r["id"] async for r in tt.iter_requests(limit=2, feature="support")]

    assert asyncio.run(collect()) == ids[::-1]


def refusals(running: Running) -> list[tuple[int, str, str | None, Any]]:
    """(status, code, key, a call of the sync client) for each refusal to map."""
    huge = "x" * (70 * 1024)
    return [
        (401, "missing_api_key", None, lambda c: c.routes()),
        (401, "invalid_api_key", "tt-wrong-key-123", lambda c: c.routes()),
        (403, "forbidden", VIEWER_KEY, lambda c: c.apply(routes_yaml("sim-1"), "x")),
        (404, "not_found", VIEWER_KEY, lambda c: c.versions("nope")),
        (409, "conflict", OPERATOR_KEY, lambda c: c.start_rollout("faq", "v1")),
        (413, "request_too_large", APP_KEY, lambda c: c.feedback("req_x", score=1, comment=huge)),
    ]


def expected_error(running: Running, status: int, key: str | None, call: Any) -> dict[str, Any]:
    """What the server itself answers: the error object the client must carry."""
    raw = Client(running.url, key)
    captured: dict[str, Any] = {}

    def record(response: httpx.Response) -> None:
        response.read()
        captured.update(response.json()["error"])

    raw._http.event_hooks["response"] = [record]
    with raw, pytest.raises(TrimtabError):
        call(raw)
    return captured


def test_errors_carry_the_servers_status_code_message_and_request_id(running: Running) -> None:
    with Client(running.url, OPERATOR_KEY) as tt:
        tt.apply(routes_yaml("sim-1"), "launch")
    for status, code, key, call in refusals(running):
        with Client(running.url, key) as tt, pytest.raises(TrimtabError) as caught:
            call(tt)
        err = caught.value
        assert (err.status, err.code) == (status, code), err
        assert err.request_id and err.request_id.startswith("req_")
        assert err.message.endswith(f"(request id: {err.request_id})")
        assert str(err) == f"{status}: {err.message}"
        server = expected_error(running, status, key, call)
        assert server["code"] == code
        assert err.message.split(" (request id")[0] == server["message"].split(" (request id")[0]


def test_the_async_client_maps_the_same_errors(running: Running) -> None:
    async def scenario() -> list[tuple[int | None, str | None, str]]:
        out = []
        async with AsyncClient(running.url, OPERATOR_KEY) as tt:
            await tt.apply(routes_yaml("sim-1"), "launch")
            assert [r["name"] for r in await tt.routes()] == ["faq"]
            for call in (
                tt.start_rollout("faq", "v1"),
                tt.versions("nope"),
                tt.feedback("req_x", score=1, comment="x" * (70 * 1024)),
            ):
                with pytest.raises(TrimtabError) as caught:
                    await call
                out.append((caught.value.status, caught.value.code, caught.value.message))
        async with AsyncClient(running.url) as anonymous:
            with pytest.raises(TrimtabError) as caught:
                await anonymous.routes()
            out.append((caught.value.status, caught.value.code, caught.value.message))
        return out

    got = asyncio.run(scenario())
    assert [(s, c) for s, c, _ in got] == [
        (409, "conflict"),
        (404, "not_found"),
        (413, "request_too_large"),
        (401, "missing_api_key"),
    ]
    assert got[0][2].startswith("v1 is already the stable version of route 'faq'")
    assert got[1][2].startswith("no route named 'nope'")


def test_an_unreachable_server_is_a_trimtab_error() -> None:
    from trimtab.testing.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with Client(url) as tt, pytest.raises(TrimtabError) as caught:
        tt.routes()
    assert caught.value.status is None and caught.value.code == "unreachable"
    assert str(caught.value).startswith(f"cannot reach trimtab at {url}")
