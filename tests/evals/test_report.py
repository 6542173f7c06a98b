"""Reports render from the templates shipped in the package; HTML escapes what datasets and
scorers wrote, markdown keeps a table cell in one piece."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trimtab.evals import report
from trimtab.evals.bakeoff import Column, scorecard


def comparison() -> dict[str, Any]:
    scorer = {
        "scorer": "correct",
        "verdict": "worse",
        "n": 40,
        "baseline_mean": 0.9,
        "candidate_mean": 0.7,
        "difference": -0.2,
        "interval": [-0.35, -0.05],
        "p_adjusted": 0.01,
        "detectable_drop": 0.1,
        "pass_to_fail": ["<script>alert(1)</script>"],
        "fail_to_pass": [],
        "method": "McNemar exact test",
    }
    return {
        "baseline": "run_a",
        "candidate": "run_b",
        "outcome": "fail",
        "items": 40,
        "errors": {"baseline": 0, "candidate": 1},
        "scorers": [scorer],
        "reasons": ["correct: worse | by 0.2"],
        "regressions": ["<script>alert(1)</script>"],
    }


def run(run_id: str, model: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "suite": "s",
        "route": None,
        "route_version": None,
        "model": model,
        "dataset": "d",
        "dataset_version": 2,
        "items": 40,
        "errors": 1,
        "summary": {
            "scorers": [
                {
                    "scorer": "correct",
                    "scored": 39,
                    "errors": 0,
                    "mean": 0.7,
                    "mean_interval": [0.55, 0.82],
                    "pass_rate": 0.7,
                    "pass_rate_interval": [0.54, 0.82],
                }
            ],
            "latency_ms": {"p50": None, "p95": None},
        },
    }


def test_html_escapes_and_markdown_keeps_cells() -> None:
    html = report.comparison(comparison(), run("run_a", "m1"), run("run_b", "m2"), "html")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = report.comparison(comparison(), run("run_a", "m1"), run("run_b", "m2"), "md")
    assert md.startswith("# Comparison: run_b against run_a: fail\n")
    assert "- correct: worse \\| by 0.2" in md
    assert "| correct | worse | 40 | 0.900 | 0.700 | -0.200 (-0.350 to -0.050) | 0.01 |" in md
    assert "40 items paired; failed calls: 0 baseline, 1 candidate." in md


def test_a_scorecard_costs_and_latency_from_the_results() -> None:
    results: list[dict[str, Any]] = [
        {"cost_usd": 0.002, "latency_ms": 100.0, "error": None},
        {"cost_usd": 0.004, "latency_ms": 300.0, "error": None},
        {"cost_usd": None, "latency_ms": None, "error": "HTTP 500"},
    ]
    card = scorecard("s", [Column("m1", run("run_a", "m1"), results)])
    (column,) = card["columns"]
    assert column["cost_usd"]["per_item"] == pytest.approx(0.003)
    assert column["cost_usd"]["per_1000"] == pytest.approx(3.0)
    assert column["latency_ms"] == {"p50": 200.0, "p95": pytest.approx(290.0)}
    assert column["error_rate"] == pytest.approx(1 / 40)
    md = report.bakeoff(card, "md")
    assert "| cost per 1,000 items (USD) | 3 |" in md
    with pytest.raises(ValueError, match="at least one column"):
        scorecard("s", [])


def test_the_format_comes_from_the_file_name_and_the_templates_ship_with_the_package() -> None:
    assert report.format_of(Path("a.HTML")) == "html"
    assert report.format_of(Path("a.md")) == "md"
    with pytest.raises(ValueError, match=r"a report is \.md or \.html, not 'no extension'"):
        report.format_of(Path("report"))
    shipped = Path(report.__file__).parent / "templates"
    names = sorted(p.name for p in shipped.glob("*.j2"))
    assert names == ["bakeoff.html.j2", "bakeoff.md.j2", "compare.html.j2", "compare.md.j2"]
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    assert '"evals/templates/*.j2"' in pyproject.read_text(encoding="utf-8")
