"""The import graph keeps the layering of docs/architecture.md: the contracts in
pyproject.toml ([tool.importlinter]) hold, and the check itself can fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_layers() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    # every contract of pyproject.toml ran
    for contract in ("Layers", "pure core", "no Starlette", "Only the CLI"):
        assert contract in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The same kind of contract on a two-package tree with one upward import fails."""
    pkg = tmp_path / "layered"
    (pkg / "low").mkdir(parents=True)
    (pkg / "high").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("from layered import high\n")
    config = tmp_path / ".importlinter"
    config.write_text(
        textwrap.dedent(
            """\
            [importlinter]
            root_package = layered

            [importlinter:contract:layers]
            name = Layers
            type = layers
            containers = layered
            layers =
                high
                low
            """
        )
    )
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "layered.low is not allowed to import layered.high" in result.stdout
