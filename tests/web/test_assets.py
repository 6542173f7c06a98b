"""The console's vendored chart library is the one its README names, and ships."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from trimtab.web.render import STATIC, TEMPLATES

UPLOT = STATIC / "uplot"
ROOT = Path(__file__).resolve().parents[2]


def test_uplot_files_match_their_recorded_hashes() -> None:
    notes = (UPLOT / "README.md").read_text()
    recorded = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", notes, re.M))
    assert set(recorded) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in recorded.items():
        assert hashlib.sha256((UPLOT / name).read_bytes()).hexdigest() == digest, name
    assert "Permission is hereby granted" in (UPLOT / "LICENSE").read_text()  # MIT


def test_templates_and_static_files_are_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["trimtab"]
    package = STATIC.parents[1]
    shipped = {p for g in globs for p in package.glob(g)}
    wanted = [*TEMPLATES.glob("*"), *(p for p in STATIC.rglob("*") if p.is_file())]
    assert wanted and [str(p) for p in wanted if p not in shipped] == []


def test_pages_load_nothing_from_another_origin() -> None:
    for template in TEMPLATES.glob("*.j2"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']https?://""", text), template.name
