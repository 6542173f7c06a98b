"""Route names are per tenant (issue 8, item 6): two tenants' routes of one name live side
by side, a tenant's own route shadows a shared one, and another tenant's route reads as
absent for every call, reads and writes alike. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    GatewayFactory,
    Running,
    auth,
    stored,
)
from trimtab.cli import cli


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=ROUTE_KEYS)


def faq(model: str, tenant: str | None = None) -> str:
    line = f"    tenant: {tenant}\n" if tenant else ""
    return f"""
routes:
  faq:
    owner: faq@example
    risk_tier: 0
{line}    version:
      model: {model}
      messages:
        - {{role: system, content: "Answer about {{{{topic}}}}."}}
"""


def post(running: Running, path: str, key: str, **body: Any) -> httpx.Response:
    return httpx.post(running.url + path, json=body, headers=auth(key), timeout=30)


def apply(running: Running, text: str, key: str) -> dict[str, Any]:
    resp = post(running, "/api/routes/apply", key, yaml=text, message="m")
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()["routes"][0]
    return result


def served_model(running: Running, key: str) -> str:
    """The model that served one call of route:faq with `key`."""
    resp = post(
        running, "/v1/chat/completions", key, model="route:faq",
        messages=[{"role": "user", "content": "hi"}], variables={"topic": "returns"},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    row = stored(running, resp.headers["x-trimtab-request-id"])
    model: str = row["request_model"]
    return model


def test_two_tenants_apply_the_same_name_and_each_calls_its_own(running: Running) -> None:
    acme = apply(running, faq("gpt-mock"), OPERATOR_KEY)
    globex = apply(running, faq("sim-1"), GLOBEX_OPERATOR_KEY)
    assert (acme["tenant"], acme["version"]) == ("acme", 1)
    assert (globex["tenant"], globex["version"], globex["new_route"]) == ("globex", 1, True)
    assert served_model(running, APP_KEY) == "gpt-mock"
    assert served_model(running, GLOBEX_APP_KEY) == "sim-1"
    # each tenant's reads are of its own route: its versions, its timeline
    for key, model in ((OPERATOR_KEY, "gpt-mock"), (GLOBEX_OPERATOR_KEY, "sim-1")):
        version = httpx.get(running.url + "/api/routes/faq/versions/1", headers=auth(key))
        assert version.json()["bundle"]["model"] == model
        timeline = httpx.get(running.url + "/api/routes/faq/timeline", headers=auth(key))
        assert [e["actor"] for e in timeline.json()["data"]] == [
            "ml@acme" if key == OPERATOR_KEY else "ml@globex"
        ]
    # a rollout on acme's faq is acme's alone
    apply(running, faq("claude-mock"), OPERATOR_KEY)
    started = post(running, "/api/routes/faq/rollouts", OPERATOR_KEY, to="v2", reason="go")
    assert started.status_code == 201, started.text
    assert started.json()["tenant"] == "acme"
    theirs = httpx.get(running.url + "/api/routes/faq/rollout", headers=auth(GLOBEX_OPERATOR_KEY))
    assert theirs.status_code == 404
    assert {served_model(running, GLOBEX_APP_KEY) for _ in range(10)} == {"sim-1"}
    # an admin sees both and picks one with ?tenant=
    listed = httpx.get(running.url + "/api/routes", headers=auth(ADMIN_KEY)).json()["data"]
    assert sorted((r["name"], r["tenant"]) for r in listed) == [
        ("faq", "acme"), ("faq", "globex"),
    ]  # fmt: skip
    picked = httpx.get(running.url + "/api/routes/faq?tenant=globex", headers=auth(ADMIN_KEY))
    assert picked.json()["tenant"] == "globex" and picked.json()["stable"]["bundle"]["model"] == (
        "sim-1"
    )


def test_another_tenants_route_reads_as_not_found(running: Running) -> None:
    apply(running, faq("gpt-mock").replace("faq:", "acme-only:"), OPERATOR_KEY)
    apply(running, faq("sim-1").replace("faq:", "acme-only:"), OPERATOR_KEY)
    writes = [
        ("/api/routes/acme-only/rollouts", {"to": "v2", "reason": "x"}),
        ("/api/routes/acme-only/rollout/pause", {"reason": "x"}),
        ("/api/routes/acme-only/rollback", {"to": "v1", "reason": "x"}),
        ("/api/routes/acme-only/versions/v2/attestations", {"kind": "eval", "result": "pass"}),
        ("/api/routes/acme-only/rollouts?tenant=acme", {"to": "v2", "reason": "x"}),
    ]
    for path, body in writes:
        resp = post(running, path, GLOBEX_OPERATOR_KEY, **body)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"]["message"].startswith("no route 'acme-only'")
    for path in ("", "/versions", "/timeline", "?tenant=acme"):
        resp = httpx.get(
            running.url + "/api/routes/acme-only" + path, headers=auth(GLOBEX_OPERATOR_KEY)
        )
        assert resp.status_code == 404 and "no route named 'acme-only'" in resp.text
    # applying the name creates globex's own route: nothing says acme has one
    mine = apply(running, faq("sim-1").replace("faq:", "acme-only:"), GLOBEX_OPERATOR_KEY)
    assert (mine["tenant"], mine["version"], mine["status"]) == ("globex", 1, "created")
    acme = httpx.get(running.url + "/api/routes/acme-only", headers=auth(OPERATOR_KEY)).json()
    assert (acme["tenant"], acme["latest_version"]) == ("acme", 2)


def test_a_tenants_own_route_shadows_the_shared_one(running: Running) -> None:
    shared = apply(running, faq("sim-1"), ADMIN_KEY)
    assert shared["tenant"] is None
    # an operator may not shadow a shared route by accident
    refused = post(running, "/api/routes/apply", OPERATOR_KEY, yaml=faq("gpt-mock"), message="m")
    assert refused.status_code == 403 and "shared by every tenant" in refused.text
    own = apply(running, faq("gpt-mock", tenant="acme"), ADMIN_KEY)
    assert (own["tenant"], own["new_route"]) == ("acme", True)
    assert served_model(running, APP_KEY) == "gpt-mock"
    assert served_model(running, GLOBEX_APP_KEY) == "sim-1"
    # the shared one is still there for acme to read, with ?tenant= (empty: shared)
    read = httpx.get(running.url + "/api/routes/faq?tenant=", headers=auth(OPERATOR_KEY))
    assert read.status_code == 200 and read.json()["tenant"] is None


def test_an_admin_picks_a_tenants_route_from_the_command_line(running: Running) -> None:
    apply(running, faq("gpt-mock").replace("faq:", "globex-faq:"), GLOBEX_OPERATOR_KEY)
    apply(running, faq("sim-1").replace("faq:", "globex-faq:"), GLOBEX_OPERATOR_KEY)
    runner = CliRunner()
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": ADMIN_KEY}
    start = ["rollout", "start", "globex-faq", "--to", "v2", "-r", "go"]
    # the admin's own tenant (acme) has no such route, and no shared one exists
    missing = runner.invoke(cli, start, env=env)
    assert missing.exit_code == 1 and "no route 'globex-faq'" in missing.output
    started = runner.invoke(cli, [*start, "--tenant", "globex"], env=env)
    assert started.exit_code == 0, started.output
    assert "v1 -> v2, running" in started.output
    status = runner.invoke(cli, ["rollout", "status", "globex-faq", "--tenant", "globex"], env=env)
    assert status.exit_code == 0 and "running" in status.output
    back = runner.invoke(
        cli, ["rollback", "globex-faq", "--tenant", "globex", "-r", "stop"], env=env
    )
    assert back.exit_code == 0 and "stable stays v1, as it was" in back.output
