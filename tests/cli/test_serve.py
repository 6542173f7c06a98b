"""`trimtab serve`, `check-config`, `version` and `--version`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from trimtab import __version__
from trimtab.cli import cli
from trimtab.cli.serve import banner
from trimtab.config import parse_config

runner = CliRunner()


def test_check_config_reports_models(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("providers: {sim: {kind: simulator}}\nmodels: {m1: {provider: sim}}\n")
    result = runner.invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "m1 -> sim:m1" in result.output


def test_check_config_prints_each_deployment_of_a_pool(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers: {a: {kind: simulator}, b: {kind: simulator}}\n"
        "models:\n"
        "  pooled: {deployments: [{provider: a, model: mock-1}, {provider: b, weight: 3}]}\n"
        "  single: {deployments: [{provider: b, model: mock-2}]}\n"
    )
    result = runner.invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "model pooled -> a:mock-1 (weight 1), b:pooled (weight 3)" in result.output
    assert "model single -> b:mock-2" in result.output
    assert "None" not in result.output


def test_a_config_file_with_yaml_aliases_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers: {sim: {kind: simulator}}\nmodels:\n  m1: &m {provider: sim}\n  m2: *m\n"
    )
    result = runner.invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "invalid YAML: YAML aliases (*m) are not accepted" in result.output


def test_bad_config_exits_2_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("models: {m1: {provider: nope}}\n")
    result = runner.invoke(cli, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "models.m1.provider: unknown provider 'nope'" in result.output


def test_version() -> None:
    result = runner.invoke(cli, ["version"])
    assert result.output.strip() == __version__


def test_version_flag_and_command() -> None:
    for args in (["--version"], ["version"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert result.output == f"{__version__}\n"


def test_the_start_banner_hides_the_store_password() -> None:
    cfg = parse_config({"store": {"url": "postgresql://trimtab:pg-s3cret-pw@db:5432/trimtab"}})
    line = banner(cfg)
    assert "pg-s3cret-pw" not in line
    assert "store postgresql://trimtab:***@db:5432/trimtab," in line
    query = parse_config({"store": {"url": "postgresql://db/trimtab?password=pg-s3cret-pw"}})
    assert "pg-s3cret-pw" not in banner(query)


def test_check_config_hides_the_store_password(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("store: {url: 'postgresql://trimtab:pg-s3cret-pw@db/trimtab'}\n")
    result = runner.invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "pg-s3cret-pw" not in result.output
    assert "postgresql://trimtab:***@db/trimtab" in result.output  # rich may wrap the line


def test_serve_on_a_taken_port_fails_before_touching_the_store(tmp_path: Path) -> None:
    """`trimtab serve --port P` with P taken: exit 1 naming the holder, and no trimtab.db
    (the embedded default's SQLite file) created, no migration run."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_PORT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        result = subprocess.run(
            [str(Path(sys.executable).with_name("trimtab")), "serve", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "300"},
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in message
    assert f"by pid {holder.pid} (" in message  # the holder, found through /proc
    assert "--port" in message
    assert not (tmp_path / "trimtab.db").exists()
    assert list(tmp_path.iterdir()) == []
    assert "Traceback" not in result.stderr


HOLD_A_PORT = """
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(120)
"""
