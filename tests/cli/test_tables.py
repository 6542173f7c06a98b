"""The one table builder, seen through the commands: at 80 columns cells fold or wrap and
are never cut short, and a header breaks only between its words."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import cells, traffic, trimtab
from tests.support import ADMIN_KEY, Running

SUMMARY_HEADERS = (
    "model", "requests", "errors", "error %", "p50 ms", "p95 ms", "p99 ms",
    "ttft p50", "in tok", "out tok", "cost $",
)  # fmt: skip


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


def test_summary_headers_break_between_words_at_80_columns(running: Running) -> None:
    """Eleven columns in 80: a header may take two lines, but 'requests' is never printed
    as 'reque' over 'sts'."""
    traffic(running, ok=2, failed=0)
    code, out = trimtab(running, "summary", "--group-by", "model", columns=80)
    assert code == 0, out
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert lines[0] == "last 1h, by model"
    first_row = next(i for i, line in enumerate(lines) if line.startswith("sim-1"))
    header_words = " ".join(lines[1:first_row]).split()
    assert sorted(header_words) == sorted(" ".join(SUMMARY_HEADERS).split()), out
    assert lines[first_row].split()[:3] == ["sim-1", "2", "0"]


def test_cells_are_text_not_markup(running: Running, tmp_path: Path) -> None:
    """A route's owner as written in its file: '[/]' in it once ended `routes` with a
    MarkupError."""
    owner = "ml [/] [red]oncall[/red]"
    file = tmp_path / "routes.yaml"
    file.write_text(
        f"routes:\n  faq:\n    owner: '{owner}'\n    risk_tier: 0\n"
        "    version: {model: sim-1, messages: [{role: user, content: hi}]}\n"
    )
    code, out = trimtab(running, "apply", "-f", str(file), "-m", "go", api_key=ADMIN_KEY)
    assert code == 0, out
    code, out = trimtab(running, "routes")
    assert code == 0, out
    line = next(ln for ln in out.splitlines() if ln.startswith("faq"))
    assert owner in line, out
