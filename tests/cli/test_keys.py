"""`trimtab keys create | list | revoke` against a running gateway."""

from __future__ import annotations

import re

import pytest

from tests.auth.support import chat
from tests.cli.support import runner
from tests.support import ADMIN_KEY, KEYS, VIEWER_KEY, GatewayFactory, Running
from trimtab.cli import cli
from trimtab.testing.servers import free_port


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str) -> Running:
    return gateway(store=sqlite_url, keys=KEYS)


def keys(running: Running, *args: str, api_key: str = ADMIN_KEY) -> tuple[int, str]:
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": api_key, "COLUMNS": "200"}
    result = runner.invoke(cli, ["keys", *args], env=env)
    return result.exit_code, result.output


def test_create_list_revoke(running: Running) -> None:
    code, out = keys(
        running, "create", "--tenant", "acme", "--role", "app", "--owner", "alice", "--name", "nb"
    )
    assert code == 0, out
    key = re.search(r"^(tt-\S+)$", out, re.M)
    key_id = re.search(r"created (key_[0-9a-f]{12})", out)
    assert key and key_id, out
    assert "not shown again" in out
    assert chat(running.url, key.group(1)).status_code == 200

    code, out = keys(running, "list", "--tenant", "acme")
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if key_id.group(1) in ln)
    assert "active" in line and "alice" in line and "store" in line
    assert "globex" not in out
    assert key.group(1) not in out

    code, out = keys(running, "revoke", key_id.group(1))
    assert code == 0, out
    assert f"revoked {key_id.group(1)}" in out
    assert chat(running.url, key.group(1)).status_code == 401
    code, out = keys(running, "list")
    line = next(ln for ln in out.splitlines() if key_id.group(1) in ln)
    assert "revoked" in line


def test_create_with_expiry_and_options_instead_of_environment(running: Running) -> None:
    args = ["keys", "create", "--tenant", "globex", "--role", "viewer", "--owner", "bob"]
    options = ["--expires", "30d", "--url", running.url, "--api-key", ADMIN_KEY]
    wrong = {"TRIMTAB_URL": f"http://127.0.0.1:{free_port()}", "TRIMTAB_API_KEY": VIEWER_KEY}
    result = runner.invoke(cli, [*args, *options], env=wrong)
    assert result.exit_code == 0, result.output
    assert "expires 20" in result.output


def test_server_errors_are_printed_and_exit_1(running: Running) -> None:
    code, out = keys(
        running,
        "create",
        "--tenant",
        "acme",
        "--role",
        "app",
        "--owner",
        "x",
        api_key=VIEWER_KEY,
    )
    assert code == 1
    assert "403: only a key with role 'admin' may create keys" in out
    code, out = keys(running, "create", "--tenant", "acme", "--role", "root", "--owner", "x")
    assert code == 1
    assert "role: 'root' is not one of app, viewer, operator, admin" in out
    admin_id = next(
        ln.split()[0] for ln in keys(running, "list")[1].splitlines() if "ops@acme" in ln
    )
    code, out = keys(running, "revoke", admin_id)
    assert code == 1
    assert "409: key" in out and "configuration file" in out
    code, out = keys(running, "revoke", "key_000000000000")
    assert code == 1 and "404: no key with id 'key_000000000000'" in out
    code, out = keys(running, "list", api_key="tt-wrong-key-123")
    assert code == 1 and "401: invalid API key" in out


def test_an_unreachable_server_is_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(cli, ["keys", "list", "--url", url, "--api-key", ADMIN_KEY])
    assert result.exit_code == 1
    assert f"cannot reach trimtab at {url}" in result.output


def test_names_with_brackets_are_printed_as_typed(running: Running) -> None:
    """An owner or name is text: '[/]' in it once ended `keys list` with a MarkupError."""
    owner, name = "ops [/] team", "[bold]nightly[/bold] jobs"
    code, out = keys(
        running, "create", "--tenant", "acme", "--role", "viewer", "--owner", owner, "--name", name
    )
    assert code == 0, out
    assert f"owner {owner}" in out
    key_id = out.split()[1].rstrip(":")
    code, out = keys(running, "list", "--tenant", "acme")
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if key_id in ln)
    assert owner in line and name in line, out
    code, out = keys(running, "revoke", key_id)
    assert code == 0 and f"owner {owner})" in out, out
