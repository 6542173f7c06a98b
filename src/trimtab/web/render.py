"""The console's Jinja2 environment: templates from the package, filters for units."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
DASH = "\N{EN DASH}"  # what a missing value shows
BODY_PREVIEW = 4000  # characters of a stored body a page shows before "load whole"


def ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:,.1f} ms"


def usd(value: float | None) -> str:
    if value is None:
        return DASH
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:,.6f}".rstrip("0")
    return f"${value:,.2f}"


def pct(value: float | None, digits: int = 2) -> str:
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f} %"


def num(value: float | int | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3f}"
    return f"{int(value):,}"


def when(value: datetime | str | None) -> Markup:
    """A <time> the page's script shows in the viewer's time zone (UTC until then)."""
    if value is None:
        return Markup(DASH)
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    iso = at.astimezone(UTC).isoformat()
    shown = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup(f'<time datetime="{escape(iso)}">{escape(shown)}</time>')


def query(params: dict[str, Any], **changes: Any) -> str:
    """`?a=1&b=2` from the page's filters with `changes` applied (None drops a key)."""
    merged = {**params, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else "?"


def preview(text: str | None, limit: int = BODY_PREVIEW) -> tuple[str, bool]:
    """The first `limit` characters and whether there was more."""
    if text is None:
        return "", False
    return (text[:limit], True) if len(text) > limit else (text, False)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ms=ms, usd=usd, pct=pct, num=num, when=when)
    env.globals.update(query=query)
    return env
