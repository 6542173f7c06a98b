"""`trimtab datasets push | list | show | export | diff` against a running gateway."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.cli import support
from tests.cli.support import cells
from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    VIEWER_KEY,
    Running,
)
from trimtab.client import Client
from trimtab.evals.datasets import dataset_digest, parse


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key)


def jsonl(*rows: object) -> str:
    return "".join(orjson.dumps(r).decode() + "\n" for r in rows)


V1 = jsonl(
    {"id": "refund", "variables": {"q": "Can I get a refund?"}, "expected": "30 days"},
    {"id": "hours", "variables": {"q": "When are you open?"}, "tags": ["golden", "faq"]},
    {"id": "hello", "messages": [{"role": "user", "content": "hi there"}]},
)
V2 = jsonl(
    {"id": "refund", "variables": {"q": "Can I get a refund?"}, "expected": "within 30 days"},
    {"id": "hello", "messages": [{"role": "user", "content": "hi there"}]},
    {"id": "ship", "variables": {"q": "Do you ship abroad?"}, "expected": ["yes", "we do"]},
)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_push_list_show_export_diff(running: Running, tmp_path: Path) -> None:
    file = write(tmp_path, "golden.jsonl", V1)
    code, out = trimtab(running, "datasets", "push", "golden", "-f", file, "-m", "first cut")
    assert code == 0, out
    digest = dataset_digest(parse(V1, "jsonl", "x"))
    assert out.strip() == f"golden (tenant acme): created v1 (3 items, {digest[:12]})"
    code, out = trimtab(running, "datasets", "push", "golden", "-f", file)
    assert code == 0, out
    assert out.strip() == (
        f"golden (tenant acme): unchanged: v1 holds these items (3 items, {digest[:12]})"
    )
    code, out = trimtab(
        running, "datasets", "push", "golden", "-f", write(tmp_path, "v2.jsonl", V2)
    )
    assert code == 0, out
    assert out.startswith("golden (tenant acme): created v2 (3 items, ")

    code, out = trimtab(running, "datasets", "list", api_key=VIEWER_KEY)
    assert code == 0, out
    rows = cells(out.splitlines(), "golden")
    assert rows["golden"]["tenant"] == ["acme"]
    assert rows["golden"]["version"] == ["v2"]
    assert rows["golden"]["items"] == ["3"]
    assert rows["golden"]["message"] == ["push v2.jsonl"]

    code, out = trimtab(running, "datasets", "show", "golden", "--version", "1", api_key=VIEWER_KEY)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"golden v1 (acme): 3 items, {digest[:12]}, ")
    assert lines[0].endswith("by ml@acme: first cut")
    items = {line.split()[0]: line for line in lines[2:]}
    assert list(items) == ["refund", "hours", "hello"]
    assert "q=Can I get a refund?" in items["refund"] and "30 days" in items["refund"]
    assert items["hours"].rstrip().endswith("golden, faq")
    assert "1 message(s); user: hi there" in items["hello"]

    exported = tmp_path / "out.jsonl"
    code, out = trimtab(
        running, "datasets", "export", "golden", "-o", str(exported), "--version", "v1"
    )
    assert code == 0, out
    assert out.strip() == f"wrote 3 items of golden v1 ({digest[:12]}) to {exported}"
    assert dataset_digest(parse(exported.read_text(), "jsonl", "out")) == digest
    # the export pushed back is the same version: nothing new
    code, out = trimtab(running, "datasets", "push", "golden", "-f", str(exported))
    assert code == 0, out
    assert "unchanged: v1 holds these items" in out
    newest = tmp_path / "newest.jsonl"
    code, out = trimtab(running, "datasets", "export", "golden", "-o", str(newest))
    assert code == 0, out
    assert "golden v2" in out
    assert parse(newest.read_text(), "jsonl", "n") == parse(V2, "jsonl", "v2")

    code, out = trimtab(running, "datasets", "diff", "golden", "v1", "v2", api_key=VIEWER_KEY)
    assert code == 0, out
    assert out.splitlines() == [
        "golden: v1 -> v2: 1 added, 1 removed, 1 changed",
        "+ ship",
        "- hours",
        "~ refund",
    ]
    code, out = trimtab(running, "datasets", "diff", "golden", api_key=VIEWER_KEY)
    assert code == 0, out
    assert out.splitlines()[0] == "golden: v1 -> v2: 1 added, 1 removed, 1 changed"
    code, out = trimtab(running, "datasets", "diff", "golden", "--", "", "1", api_key=VIEWER_KEY)
    assert code == 1
    assert "1 of 'golden' is its first version" in out


def test_csv_push_maps_columns(running: Running, tmp_path: Path) -> None:
    text = "id,question,expected,tags\nr1,refund?,30 days,a;b\nr2,hours?,9-5,\n"
    code, out = trimtab(running, "datasets", "push", "cases", "-f", write(tmp_path, "c.csv", text))
    assert code == 0, out
    with Client(running.url, VIEWER_KEY) as client:
        shown = client.dataset_version("cases")
    assert shown["data"] == [
        {
            "id": "r1",
            "variables": {"question": "refund?"},
            "expected": "30 days",
            "tags": ["a", "b"],
        },
        {"id": "r2", "variables": {"question": "hours?"}, "expected": "9-5"},
    ]


def test_a_bad_file_prints_each_problem_and_stores_nothing(
    running: Running, tmp_path: Path
) -> None:
    text = "\n".join(
        [
            '{"id": "a", "variables": {"q": "x"}}',
            "[1, 2]",
            '{"id": "a", "variables": {"q": "y"}}',
            '{"variables": {"q": "z"}, "colour": "red"}',
        ]
    )
    file = write(tmp_path, "bad.jsonl", text)
    code, out = trimtab(running, "datasets", "push", "golden", "-f", file)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"error: {file}: 3 problem(s), nothing was stored (request id: req_")
    assert lines[1:] == [
        f"{file} line 2: each line must be a JSON object",
        f"{file} line 3: id 'a' is already used on line 1",
        f"{file} line 4: unknown field 'colour' (known: id, variables, messages, expected, "
        "tags, metadata)",
    ]
    code, out = trimtab(running, "datasets", "list")
    assert code == 0 and "golden" not in out
    code, out = trimtab(running, "datasets", "push", "golden", "-f", write(tmp_path, "x.txt", ""))
    assert code == 1
    assert "a dataset file ends in .jsonl, .ndjson or .csv" in out


def test_roles_and_tenants(running: Running, tmp_path: Path) -> None:
    file = write(tmp_path, "golden.jsonl", V1)
    code, out = trimtab(running, "datasets", "push", "golden", "-f", file, api_key=VIEWER_KEY)
    assert code == 1
    assert "error: 403: only a key with role 'operator' or 'admin' may push datasets" in out
    code, out = trimtab(running, "datasets", "list", api_key=APP_KEY)
    assert code == 1 and "403" in out
    assert trimtab(running, "datasets", "push", "golden", "-f", file)[0] == 0
    shared = write(tmp_path, "shared.jsonl", V2)
    code, out = trimtab(
        running, "datasets", "push", "common", "-f", shared, "--tenant", "", api_key=ADMIN_KEY
    )
    assert code == 0, out
    assert out.startswith("common (shared): created v1")

    code, out = trimtab(running, "datasets", "show", "golden", api_key=GLOBEX_VIEWER_KEY)
    assert code == 1
    assert "error: 404: no dataset named 'golden'" in out
    code, out = trimtab(running, "datasets", "list", api_key=GLOBEX_VIEWER_KEY)
    assert code == 0, out
    assert set(cells(out.splitlines(), "")) == {"common"}
    code, out = trimtab(running, "datasets", "show", "common", api_key=GLOBEX_VIEWER_KEY)
    assert code == 0, out
    assert out.startswith("common v1 ((shared)): 3 items")
