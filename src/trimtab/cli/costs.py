"""`trimtab costs forecast` and `trimtab costs economics` against a running trimtab."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call
from trimtab.cli.options import DEFAULT_URL, ApiKey, TenantFilter, Url
from trimtab.cli.tables import table

costs = typer.Typer(help="Spend forecasts and unit economics.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print the answer as one JSON document.")]


def _usd(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"${value:,.{digits}f}"


def _forecast_row(f: dict[str, Any]) -> list[str]:
    if f["status"] != "ok":
        projection = "[dim]too little data[/dim]"
        interval = chance = "-"
    else:
        colour = "red" if f["crosses"] else "green"
        projection = f"[{colour}]{_usd(f['projected_usd'])}[/{colour}]"
        interval = f"{_usd(f['low_usd'])}-{_usd(f['high_usd'])}"
        chance = f"{f['chance_over'] * 100:.0f} %"
    return [
        escape(f["scope"]),
        f["period"],
        f["period_end"][:10],
        _usd(f["spent_usd"]),
        _usd(f["limit_usd"]),
        projection,
        interval,
        chance,
        str(f["days"]),
        "weekly" if f["method"] and "week" in f["method"] else "line" if f["method"] else "-",
    ]


@costs.command("forecast")
def forecast(
    tenant: TenantFilter = None,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Each budget with its spend so far and the forecast to the end of its period: the
    projection, its 90 % interval, the chance of going over, the days it was fitted on."""
    data = call(url, api_key, lambda c: c.cost_forecast(tenant=tenant))
    if as_json:
        print(json.dumps(data, indent=2))
        return
    out = Console(highlight=False, soft_wrap=True)
    if not data["data"] and not data["not_forecast"]:
        out.print("no budgets")
        return
    shown = table(
        "scope",
        "period",
        "ends",
        "spent",
        "budget",
        "forecast",
        "90 % interval",
        "over",
        "days",
        "model",
        right=("spent", "budget", "forecast", "over", "days"),
    )
    for f in data["data"]:
        shown.add_row(*_forecast_row(f))
    out.print(shown)
    for s in data["not_forecast"]:
        out.print(f"[dim]{escape(s['scope'])}: {escape(s['reason'])}[/dim]")
    for sig in data["signals"]:
        if sig["firing"]:
            out.print(f"[yellow]{sig['severity']}: {escape(sig['summary'])}[/yellow]")
    out.print(
        "[dim]forecast: least squares on the last 28 complete days' spend (a line; with "
        "day-of-week effects from 14 days on); interval: the regression's prediction "
        "interval; too little data below 3 days[/dim]"
    )


@costs.command("economics")
def economics(
    by: Annotated[
        str, typer.Option("--by", help="One row per route, feature or tenant.")
    ] = "route",
    window: Annotated[str, typer.Option("--window", help="How far back, e.g. 7d.")] = "30d",
    tenant: TenantFilter = None,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Cost per request, per successful request, per 1,000 tokens and per session, per
    route, feature or tenant, from the per-minute rollups (sessions estimated from their
    HyperLogLog sketches: the interval is at 2 standard deviations)."""
    data = call(url, api_key, lambda c: c.unit_economics(window=window, group_by=by, tenant=tenant))
    if as_json:
        print(json.dumps(data, indent=2))
        return
    out = Console(highlight=False, soft_wrap=True)
    figures = ("requests", "successful", "cost", "per request", "per successful",
               "per 1k tokens", "sessions", "per session")  # fmt: skip
    shown = table(by, *figures, right=figures)
    for g in [*data["groups"], {by: "total", **data["total"]}]:
        name = g[by] if g[by] is not None else "(none)"
        shown.add_row(
            escape(str(name)),
            str(g["requests"]),
            str(g["successful"]),
            _usd(g["cost_usd"], 4),
            _usd(g["cost_per_request_usd"], 6),
            _usd(g["cost_per_successful_request_usd"], 6),
            _usd(g["cost_per_1k_tokens_usd"], 6),
            _sessions(g["sessions"]),
            _per_session(g["cost_per_session"]),
        )
    out.print(shown)
    for note in data["notes"]:
        out.print(f"[dim]note: {escape(note)}[/dim]")


def _sessions(count: dict[str, Any]) -> str:
    if not count["estimate"]:
        return "0"
    return f"{count['estimate']:,.0f} ({count['low']:,.0f}-{count['high']:,.0f})"


def _per_session(per: dict[str, Any] | None) -> str:
    if per is None:
        return "-"
    return f"{_usd(per['usd'], 6)} ({_usd(per['low_usd'], 6)}-{_usd(per['high_usd'], 6)})"


def register(app: typer.Typer) -> None:
    """Add `costs ...` to the `trimtab` command."""
    app.add_typer(costs, name="costs")
