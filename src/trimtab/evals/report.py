"""Reports of a bake-off's scorecard and of a comparison of two runs, as markdown or HTML,
rendered with Jinja2 from the templates in evals/templates/ (package data)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jinja2

Format = Literal["md", "html"]
_TEMPLATES = Path(__file__).parent / "templates"


def _number(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _interval(pair: Any, spec: str) -> str:
    if not pair:
        return ""
    return f"{format(pair[0], spec)} to {format(pair[1], spec)}"


def _cell(value: Any) -> str:
    """Text safe in a markdown table cell: no pipe, no line break."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _environment(fmt: Format) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=fmt == "html",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["number"] = _number
    env.filters["interval"] = _interval
    env.filters["cell"] = _cell
    return env


def format_of(path: Path) -> Format:
    """The report's format from its file name: .md/.markdown or .html/.htm."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return "md"
    if suffix in (".html", ".htm"):
        return "html"
    raise ValueError(f"{path}: a report is .md or .html, not '{suffix or 'no extension'}'")


def bakeoff(card: Mapping[str, Any], fmt: Format) -> str:
    return _environment(fmt).get_template(f"bakeoff.{fmt}.j2").render(card=card)


def comparison(
    result: Mapping[str, Any],
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    fmt: Format,
) -> str:
    template = _environment(fmt).get_template(f"compare.{fmt}.j2")
    return template.render(result=result, baseline=baseline, candidate=candidate)
