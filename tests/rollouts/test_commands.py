"""`trimtab rollout`, `rollback` and `attest` against a real server."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.api.test_routes_api import OPERATOR_KEY
from tests.conftest import Running
from tests.rollouts.test_rollouts_e2e import apply, drive, routes_yaml
from tests.rollouts.test_rollouts_e2e import running as running
from trimtab.cli import cli
from trimtab.rollouts.analysis import DEFAULT_METRICS

runner = CliRunner()


def test_rollout_lifecycle_from_the_command_line(running: Running, tmp_path: Path) -> None:
    apply(running, routes_yaml("sim-1", tier=1))
    apply(running, routes_yaml("sim-1", tier=1, greeting="Hi"))
    env = {"TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY}
    attest = runner.invoke(
        cli,
        ["attest", "faq", "v2", "--kind", "eval", "--result", "pass", "--url", "https://ci/1"],
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
    assert back.exit_code == 0 and "stable is now v1" in back.output
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
