"""The CLI tests' shared pieces: run `trimtab ...` in-process against a server, send it
traffic, read a printed table back into its cells, write a file to apply, and an
`slos:` file of two SLOs on the support route."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.support import APP_KEY, VIEWER_KEY, Running
from trimtab.cli import cli

runner = CliRunner()

SLOS = """
slos:
  s-availability:
    route: support-answer
    sli: {kind: availability}
    objective: 0.99
  s-latency:
    route: support-answer
    sli: {kind: latency, threshold_ms: 1000}
    objective: 0.9
"""


def trimtab(
    running: Running, *args: str, api_key: str | None = VIEWER_KEY, columns: int = 200
) -> tuple[int, str]:
    """`trimtab ARGS` with the server and a key (None: no key) in the environment, on a
    terminal `columns` wide: (exit code, output)."""
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


def write(tmp_path: Path, text: str, name: str = "service.yaml") -> str:
    """`text` in the file `name` under `tmp_path`; its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)
