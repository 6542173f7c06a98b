"""`trimtab rollout`, `rollback` and `attest` against a real server."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from tests.cli.support import runner
from tests.rollouts.conftest import running as running
from tests.rollouts.support import api, apply, drive, routes_yaml, status
from tests.rollouts.support import call as e2e_call
from tests.support import ADMIN_KEY, OPERATOR_KEY, Running, run_backed_evals
from trimtab.canary.metrics import DEFAULT_METRICS
from trimtab.cli import cli
from trimtab.client import Client


def test_rollout_lifecycle_from_the_command_line(running: Running, tmp_path: Path) -> None:
    apply(running, routes_yaml("sim-1", tier=1))
    apply(running, routes_yaml("sim-1", tier=1, greeting="Hi"))
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY}
    attest = runner.invoke(
        cli,
        ["attest", "faq", "v2", "--kind", "eval", "--result", "pass", "--link", "https://ci/1"],
        env=env,
    )
    assert attest.exit_code == 0, attest.output
    assert "eval pass by ml@acme" in attest.output
    start = runner.invoke(cli, ["rollout", "start", "faq", "--to", "v2", "--plan", "fast"], env=env)
    assert start.exit_code == 0, start.output
    assert "running" in start.output and "v1 -> v2" in start.output
    again = runner.invoke(cli, ["rollout", "start", "faq", "--to", "v2"], env=env)
    assert again.exit_code == 1 and "already has a rollout" in again.output
    paused = runner.invoke(cli, ["rollout", "pause", "faq", "-r", "lunch"], env=env)
    assert paused.exit_code == 0 and "paused" in paused.output
    back = runner.invoke(cli, ["rollback", "faq", "-r", "on-call"], env=env)
    assert back.exit_code == 0, back.output
    rollout_id = start.output.split()[1]
    assert back.output.strip() == (
        f"faq: stable stays v1, as it was; rollout {rollout_id} of v2 rolled back"
    )
    status = runner.invoke(cli, ["rollout", "status", "faq"], env=env)
    assert "rolled_back" in status.output


def test_status_shows_the_latest_decision_and_its_statistics(running: Running) -> None:
    apply(running, routes_yaml("sim-1"))
    apply(running, routes_yaml("sim-bad", greeting="Hi"))
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY, "COLUMNS": "120"}
    start = runner.invoke(cli, ["rollout", "start", "faq", "--to", "v2", "--plan", "fast"], env=env)
    assert start.exit_code == 0, start.output
    drive(running, {"rolled_back"}, limit=4000)
    status = runner.invoke(cli, ["rollout", "status", "faq"], env=env)
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert "rolled_back" in lines[0] and "error_rate regressed" in lines[1]
    assert lines[2].startswith("rollback at ") and "canary and" in lines[2]
    assert lines[3].split() == [
        "metric", "verdict", "stable", "candidate", "ratio", "interval", "margin",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split()[1] for line in lines[4:] if line.strip()}
    assert rows["error_rate"] == "regression"
    assert set(rows) == {spec.name for spec in DEFAULT_METRICS}  # every metric, one row each


def invoke(running: Running, *args: str, columns: int = 200) -> tuple[int, str]:
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY, "COLUMNS": str(columns)}
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_url_is_the_server_everywhere_and_link_is_the_evidence(running: Running) -> None:
    apply(running, routes_yaml("sim-1", tier=1))
    apply(running, routes_yaml("sim-1", tier=1, greeting="Hi"))
    args = ["attest", "faq", "v2", "--kind", "eval", "--result", "pass", "--url", running.url]
    result = runner.invoke(cli, [*args, "--link", "https://ci/run/7"], env={
        "TRIMTAB_API_KEY": OPERATOR_KEY, "TRIMTAB_URL": "http://127.0.0.1:9"
    })  # fmt: skip
    assert result.exit_code == 0, result.output  # --url reached the server, not the env's
    code, out = invoke(running, "timeline", "faq")
    assert code == 0 and "attestation eval pass" in out
    events = api_timeline(running)
    attested = [e for e in events if e["kind"] == "attestation"]
    assert [e["detail"]["url"] for e in attested] == ["https://ci/run/7"]


def test_attest_server_is_a_deprecated_name_of_url(running: Running) -> None:
    apply(running, routes_yaml("sim-1", tier=1))
    args = ["attest", "faq", "v1", "--kind", "eval", "--result", "pass", "--server", running.url]
    env = {"TRIMTAB_API_KEY": OPERATOR_KEY, "TRIMTAB_URL": "http://127.0.0.1:9"}
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "--server is deprecated: the server is --url" in result.output
    assert "--server" not in runner.invoke(cli, ["attest", "--help"], env=env).output


def api_timeline(running: Running) -> list[dict[str, Any]]:
    with Client(running.url, OPERATOR_KEY) as client:
        return [dict(e) for e in client.timeline("faq")]


def test_a_gate_refusal_prints_the_attest_commands_that_satisfy_it(running: Running) -> None:
    apply(running, routes_yaml("sim-1", tier=2))
    apply(running, routes_yaml("sim-1", tier=2, greeting="Hi"))
    code, out = invoke(running, "rollout", "start", "faq", "--to", "v2")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("error: 409: route 'faq' is risk tier 2: v2 still needs")
    assert lines[1] == "record the evidence, then start again:"
    commands = [line.split("#")[0].strip() for line in lines[2:]]
    assert commands == [
        "trimtab eval run SUITE --version v2 --baseline stable --gate",
        "trimtab attest faq v2 --kind approval --result pass",
    ]
    assert "each of the route's suites tagged golden and safety" in lines[2]
    # the printed commands do satisfy the gate (the approval by another person's key; the
    # runs' results recorded through the API as `eval run --gate` records them)
    run_backed_evals(running.url, OPERATOR_KEY, "faq", candidate=2)
    for command, key in zip(commands[1:], [ADMIN_KEY], strict=True):
        argv = shlex.split(command.replace("URL", "https://ci/1"))[1:]
        env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": key}
        result = runner.invoke(cli, argv, env=env)
        assert result.exit_code == 0, result.output
    code, out = invoke(running, "rollout", "start", "faq", "--to", "v2")
    assert code == 0, out


def test_status_after_a_manual_rollback_says_who_ended_it(running: Running) -> None:
    apply(running, routes_yaml("sim-1"))
    apply(running, routes_yaml("sim-1", greeting="Hi"))
    code, out = invoke(running, "rollout", "start", "faq", "--to", "v2", "--plan", "fast")
    assert code == 0, out
    deadline = time.monotonic() + 30
    while not status(running).get("last_decision"):  # the controller's first look: hold
        assert time.monotonic() < deadline, status(running)
        time.sleep(0.05)
    assert status(running)["last_decision"]["action"] == "hold"
    code, out = invoke(running, "rollback", "faq", "-r", "on-call saw 500s")
    assert code == 0, out
    code, out = invoke(running, "rollout", "status", "faq")
    assert code == 0, out
    lines = out.splitlines()
    assert "rolled_back" in lines[0]
    assert lines[1].startswith("  rollback at ")
    assert lines[1].endswith(" by ml@acme: on-call saw 500s")
    assert lines[2] == "  before that, the controller's last decision (hold):"


def test_rollback_to_another_version_says_what_was_stable(running: Running) -> None:
    apply(running, routes_yaml("sim-1"))
    apply(running, routes_yaml("sim-1", greeting="Hi"))
    code, out = invoke(running, "rollout", "start", "faq", "--to", "v2", "--plan", "fast")
    assert code == 0, out
    code, out = invoke(running, "rollout", "promote", "faq", "-r", "looks good")
    assert code == 0, out
    code, out = invoke(running, "rollback", "faq", "-r", "undo")
    assert code == 0, out
    assert out.strip() == "faq: stable is now v1 (was v2)"


def test_requests_shows_the_route_and_version_that_served_each(running: Running) -> None:
    apply(running, routes_yaml("sim-1"))
    served = e2e_call(running, "u1")
    assert served == "v1"
    assert running.wait_for_rows(1) == 1
    code, out = invoke(running, "requests", "--route", "faq", "--version", "1")
    assert code == 0, out
    (row,) = [line for line in out.splitlines()[1:] if line.strip()]
    assert row.split()[-2:] == ["faq", "v1"]


def test_attest_names_its_author_as_text(running: Running) -> None:
    """The key's owner is text: '[/]' in it once ended `attest`, recorded, with a
    MarkupError instead of the confirmation."""
    apply(running, routes_yaml("sim-1", tier=1))
    owner = "qa [/] team"
    with Client(running.url, ADMIN_KEY) as client:
        key = client.create_key(tenant="acme", role="operator", owner=owner)["key"]
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": key, "COLUMNS": "200"}
    args = ["attest", "faq", "v1", "--kind", "eval", "--result", "pass"]
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"faq v1: eval pass by {owner}"


def test_a_forecast_says_before_a_rollout_what_the_plan_will_do_on_this_traffic(
    running: Running,
) -> None:
    apply(running, routes_yaml("sim-1"))
    apply(running, routes_yaml("sim-1", greeting="Hi"))
    for i in range(30):
        e2e_call(running, f"u{i}")
    code, out = invoke(running, "rollout", "forecast", "faq")
    assert code == 0, out
    assert out.startswith("forecast for plan default: ") and "30 requests in the last 24.0 h" in out
    # 30 requests a day: 1 % of them never makes the first stage's 100 canary requests
    assert "warning: stage 1 (1 %) cannot meet its minimums" in out
    with Client(running.url, api_key=OPERATOR_KEY) as client:
        data = client.forecast("faq", plan="low-traffic")
        assert data["plan"] == "low-traffic" and data["baseline"]["requests"] == 30
        assert data["stages"][0]["percent"] == 10
    refused = api(running, "GET", "/api/routes/faq/forecast?plan=nope")
    assert refused.status_code == 400 and "unknown plan 'nope'" in refused.text
    code, out = invoke(running, "rollout", "start", "faq", "--to", "v2", "--plan", "fast")
    assert code == 0, out
    assert "forecast for plan fast: " in out and "a projection, not a promise" in out
