"""`trimtab requests | request | summary`, `--version`, and the CLI's own words for errors
the server writes for HTTP callers, against a running gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.api.test_routes_api import OPERATOR_KEY, ROUTE_KEYS, ROUTES
from tests.conftest import ADMIN_KEY, APP_KEY, VIEWER_KEY, GatewayFactory, Running
from trimtab import __version__
from trimtab.cli import cli
from trimtab.telemetry.commands import since_time

runner = CliRunner()


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str) -> Running:
    return gateway(store=sqlite_url, keys=ROUTE_KEYS)


def trimtab(
    running: Running, *args: str, api_key: str | None = VIEWER_KEY, columns: int = 200
) -> tuple[int, str]:
    env = {"TRIMTAB_URL": running.url, "COLUMNS": str(columns)}
    if api_key is not None:
        env["TRIMTAB_API_KEY"] = api_key
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def traffic(running: Running, ok: int, failed: int) -> list[str]:
    """`ok` calls of sim-1 (feature support) and `failed` of a model nobody serves (404)."""
    ids = []
    with httpx.Client(timeout=30) as http:
        for i in range(ok + failed):
            model = "sim-1" if i < ok else "no-such-model"
            resp = http.post(
                running.url + "/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": f"q{i}"}]},
                headers={"authorization": f"Bearer {APP_KEY}", "x-trimtab-feature": "support"},
            )
            ids.append(resp.headers["x-trimtab-request-id"])
    assert running.wait_for_rows(ok + failed) == ok + failed
    return ids


def test_requests_lists_newest_first_with_filters_across_pages(running: Running) -> None:
    ids = traffic(running, ok=4, failed=2)
    code, out = trimtab(running, "requests", "--limit", "3")
    assert code == 0, out
    shown = [line.split()[2] for line in out.splitlines()[1:] if line.strip()]
    assert shown == ids[::-1][:3]
    code, out = trimtab(running, "requests", "--status", "error", "--since", "1h")
    assert code == 0, out
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert [r.split()[2] for r in rows] == ids[::-1][:2]
    assert all(" 404 " in r for r in rows), out
    # more rows than one page of the server (the CLI asks for pages of at most --limit)
    code, out = trimtab(running, "requests", "--feature", "support", "--limit", "100")
    assert code == 0 and len([ln for ln in out.splitlines()[1:] if ln.strip()]) == 6
    code, out = trimtab(running, "requests", "--route", "nope")
    assert code == 0 and "no requests match" in out
    code, out = trimtab(running, "request", ids[0])
    assert code == 0, out
    record = json.loads(out)
    assert record["id"] == ids[0] and record["request"]["messages"][0]["content"] == "q0"
    code, out = trimtab(running, "requests", "--since", "yesterday")
    assert code == 1 and "--since yesterday: give 15m, 1h, 7d" in out


def test_since_takes_durations_iso_times_and_unix_seconds() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert since_time("15m", now) == "2026-12-01T11:45:00+00:00"
    assert since_time("2d", now) == "2026-11-29T12:00:00+00:00"
    assert since_time("1764590400", now) == "1764590400"
    assert since_time(None, now) is None


def test_summary_groups_by_model_and_feature(running: Running) -> None:
    traffic(running, ok=3, failed=1)
    code, out = trimtab(running, "summary", "--window", "1h", "--group-by", "model")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "last 1h, by model"
    assert lines[1].split()[:4] == ["model", "requests", "errors", "error"]
    rows = {ln.split()[0]: ln.split()[1:4] for ln in lines[2:] if ln.strip()}
    assert rows["sim-1"] == ["3", "0", "0.0"]
    assert rows["no-such-model"] == ["1", "1", "100.0"]
    assert rows["total"] == ["4", "1", "25.0"]
    code, out = trimtab(running, "summary", "--group-by", "feature")
    rows = {ln.split()[0]: ln.split()[1] for ln in out.splitlines()[2:] if ln.strip()}
    assert rows == {"support": "4"}  # one group: no total row
    code, out = trimtab(running, "summary", "--group-by", "colour")
    assert code == 1 and "400: group_by: 'colour' is not one of" in out


def test_version_flag_and_command() -> None:
    for args in (["--version"], ["version"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert result.output == f"{__version__}\n"


def test_a_missing_key_is_explained_in_the_clis_words(running: Running) -> None:
    for args in (["routes"], ["requests"], ["summary"], ["keys", "list"]):
        code, out = trimtab(running, *args, api_key=None)
        assert code == 1, out
        assert "401: no API key: set TRIMTAB_API_KEY or pass --api-key (request id: req_" in out
        assert "Authorization" not in out


def test_diff_of_a_first_version_says_what_to_do(running: Running, tmp_path: Path) -> None:
    file = tmp_path / "routes.yaml"
    file.write_text(ROUTES)
    assert trimtab(running, "apply", "-f", str(file), "-m", "launch", api_key=OPERATOR_KEY)[0] == 0
    code, out = trimtab(running, "diff", "support-answer")
    assert code == 1
    assert "give from=" not in out
    assert (
        "the newest version of 'support-answer' is its first version: there is nothing "
        "before it to compare with; `trimtab diff support-answer FROM TO` compares two versions"
    ) in " ".join(out.split())


def test_tables_fold_cells_at_80_columns_instead_of_cutting_them(running: Running) -> None:
    owner = "dana@acme.example.com"
    code, out = trimtab(
        running, "keys", "create", "--tenant", "acme", "--role", "viewer", "--owner", owner,
        "--name", "the dashboards of the support team", api_key=ADMIN_KEY,
    )  # fmt: skip
    assert code == 0, out
    key_id = out.split()[1].rstrip(":")
    code, out = trimtab(running, "keys", "list", api_key=ADMIN_KEY, columns=80)
    assert code == 0, out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "…" not in out
    row = cells(out.splitlines(), key_id[:4])[key_id[:8]]
    assert "".join(row["id"]) == key_id
    assert "".join(row["owner"]) == owner  # folded, every character kept
    assert " ".join(row["name"]) == "the dashboards of the support team"  # wrapped at spaces


def cells(lines: list[str], first: str) -> dict[str, dict[str, list[str]]]:
    """A printed table's rows (by the start of their first cell) and each column's pieces,
    from the header's column positions; a row's first line starts with `first`."""
    header = lines[0]
    names = header.split()
    starts = [header.index(name) for name in names]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    rows: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in lines[1:]:
        pieces = [line[a:b].strip() for a, b in bounds]
        if pieces[0].startswith(first):
            current = rows.setdefault(pieces[0][:8], {name: [] for name in names})
        for name, piece in zip(names, pieces, strict=True):
            if piece:
                current[name].append(piece)
    return rows
