"""`trimtab slo status | report | delete`, and the `slos:` section of `trimtab apply`
(with `--prune`: the SLOs it no longer names deleted), against a running trimtab."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from trimtab.bounds import safe_load_yaml
from trimtab.cli.calls import call, fail, file_refused
from trimtab.cli.options import DEFAULT_URL, ApiKey, Url
from trimtab.cli.tables import table
from trimtab.client.types import AppliedSlo, RemovedSlo, SloStatus
from trimtab.slo.report import parse_month, render_markdown
from trimtab.slo.spec import SlosError, parse_slos

slo = typer.Typer(help="Service level objectives on a running trimtab.", no_args_is_help=True)

Tenant = Annotated[
    str | None,
    typer.Option("--tenant", help="The SLOs of this tenant (an admin's choice; '' the shared)."),
]


def sections(text: str) -> dict[str, Any] | None:
    """The file's top-level mapping when it has an `slos:` section, else None (the file is
    then a routes file, read as before)."""
    try:
        data = safe_load_yaml(text)
    except yaml.YAMLError:
        return None  # the routes endpoint reports it, with the line
    if isinstance(data, dict) and "slos" in data:
        return data
    return None


def check(file: Path, data: dict[str, Any]) -> None:
    """The `slos:` section checked before anything is applied: every problem, exit 1."""
    try:
        parse_slos(data, str(file))
    except SlosError as exc:
        problems = exc.problems
        raise fail(
            f"{file}: {len(problems)} problem(s), nothing was applied\n" + "\n".join(problems)
        ) from None


def apply_slos(
    file: Path,
    text: str,
    message: str,
    url: str,
    api_key: str | None,
    *,
    prune: bool = False,
    dry_run: bool = False,
    planned_routes: Sequence[str] = (),
    planned_suites: Sequence[str] = (),
) -> None:
    """Apply an `slos:` section and print each SLO's outcome; with `prune`, the caller's
    SLOs it does not name are deleted (`dry_run`: only said; `planned_routes` and
    `planned_suites`, the routes and suites the same apply creates first, are taken as
    known)."""
    refused = file_refused(file, "invalid_slos", "no SLO was changed")
    removed: list[RemovedSlo] = []
    if prune:
        answer = call(
            url,
            api_key,
            lambda c: c.prune_slos(
                text,
                message,
                source=str(file),
                dry_run=dry_run,
                planned_routes=planned_routes,
                planned_suites=planned_suites,
            ),
            refused,
        )
        results, removed = answer["slos"], answer["pruned"]
    else:
        results = call(
            url, api_key, lambda c: c.apply_slos(text, message, source=str(file)), refused
        )
    show_applied(results, dry_run)
    for r in removed:
        show_removed(r, "would be deleted (dry run)" if dry_run else "deleted")


def show_applied(results: list[AppliedSlo], dry_run: bool = False) -> None:
    """`NAME (SLO): created (digest)`; an eval-score SLO's `(SLO, tenant suite)`."""
    out = Console(highlight=False, soft_wrap=True)
    would = "would be " if dry_run else ""
    for r in results:
        scope = r.get("suite_scope")  # None also from a server before the field
        suite = f", {scope} suite" if scope else ""
        name = f"[bold]{escape(r['slo'])}[/bold] (SLO{suite})"
        if r["status"] == "unchanged":
            out.print(f"{name}: unchanged")
        else:
            colour = "green" if r["status"] == "created" else "yellow"
            out.print(f"{name}: [{colour}]{would}{r['status']}[/{colour}] ({r['digest'][:12]})")


def show_removed(r: RemovedSlo, what: str) -> None:
    """`NAME (SLO): deleted (digest); N open alert(s) resolved: #4, #5`."""
    tenant = f", tenant {escape(r['tenant'])}" if r["tenant"] else ""
    resolved = r["alerts_resolved"]
    alerts = (
        f"; {len(resolved)} open alert(s) resolved: " + ", ".join(f"#{i}" for i in resolved)
        if resolved
        else ""
    )
    Console(highlight=False, soft_wrap=True).print(
        f"[bold]{escape(r['slo'])}[/bold] (SLO{tenant}): [red]{what}[/red] "
        f"({r['digest'][:12]}){alerts}"
    )


def _share(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.3g} %"


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _evidence(window: dict[str, Any], confidence: float) -> str:
    """The long window's burn with its interval and sample size, e.g.
    `(1h: 20, 95 % 15.9-24.8, n=200)`."""
    if window["burn"] is None:
        return f"({window['window']}: no data)"
    return (
        f"({window['window']}: {_burn(window['burn'])}, {confidence * 100:g} % "
        f"{_burn(window['low'])}-{_burn(window['high'])}, n={window['valid']})"
    )


def _selector(definition: dict[str, Any]) -> str:
    picked = [
        f"{k}={definition[k]}" for k in ("route", "model", "tenant", "feature") if k in definition
    ]
    return escape(" ".join(picked))


def _sli_kind(definition: dict[str, Any]) -> str:
    sli = definition["sli"]
    if sli["kind"] == "latency":
        of = "" if sli.get("of", "total") == "total" else " ttft"
        return f"latency{of} <= {sli['threshold_ms']:g} ms"
    if sli["kind"] == "error_rate":
        return f"error_rate {sli['class']}"
    if sli["kind"] == "cost":
        return f"cost <= ${sli['ceiling_usd']:g}"
    return str(sli["kind"])


def _row(s: SloStatus) -> list[str]:
    standing = s["standing"]
    colour = {"meeting": "green", "missing": "red", "no_data": "dim"}[standing]
    value = f"[{colour}]{_share(s['sli'])}[/{colour}]"
    left = s["budget"]["remaining_share"]
    budget_colour = (
        "dim" if left is None else "green" if left > 0.5 else "yellow" if left > 0 else "red"
    )
    budget = f"[{budget_colour}]{_share(left)}[/{budget_colour}]"
    burns, alerts = [], []
    for a in s["alerts"]:
        lw, sw = a["long_window"], a["short_window"]
        burns.append(f"{lw['window']} {_burn(lw['burn'])} / {sw['window']} {_burn(sw['burn'])}")
        label = f"{a['severity']} >{a['factor']:g}x"
        evidence = _evidence(lw, a["confidence"])
        if a["state"] == "firing":
            alerts.append(
                f"[bold red]{label}: FIRING[/bold red] {evidence}"
                if a["severity"] == "page"
                else f"[yellow]{label}: firing[/yellow] {evidence}"
            )
        elif a["state"] == "too_little_data":
            alerts.append(
                f"[dim]{label}: too little data (< {a['min_events']}; {lw['valid']})[/dim]"
            )
        else:
            alerts.append(f"[green]{label}: ok[/green] {evidence}")
    return [
        escape(s["name"]),
        escape(s["tenant"] or "(shared)"),
        _selector(s["definition"]),
        _sli_kind(s["definition"]),
        value,
        f"{s['objective'] * 100:g} %",
        f"{s['good']}/{s['valid']}",
        budget,
        "\n".join(burns),
        "\n".join(alerts),
    ]


@slo.command("status")
def status(
    route: Annotated[str | None, typer.Option("--route", help="Only this route's SLOs.")] = None,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Each SLO: SLI over its window, objective, error budget left, burn over each alert
    rule's windows (long / short) and whether the rule fires."""
    rows = call(url, api_key, lambda client: client.slos(route=route, tenant=tenant))
    out = Console(highlight=False, soft_wrap=True)
    if not rows:
        out.print("no SLOs" + (f" on route '{escape(route)}'" if route else ""))
        return
    # one word a header: `budget` is what is left of it, `burn` long / short per rule
    shown = table(
        "slo",
        "tenant",
        "selects",
        "sli",
        "value",
        "objective",
        "good/valid",
        "budget",
        "burn",
        "alerts",
        right=("value", "objective", "good/valid", "budget"),
    )
    for s in rows:
        shown.add_row(*_row(s))
    out.print(shown)
    notes = sorted({n for s in rows for n in s["notes"]})
    for note in notes:
        out.print(f"[dim]note: {escape(note)}[/dim]")
    out.print(
        "[dim]burn: bad share / (1 - objective), its interval Wilson's score interval on the "
        "bad share over (1 - objective); a rule fires when both windows exceed its factor and "
        "hold at least its minimum of events[/dim]"
    )


@slo.command("report")
def report(
    month: Annotated[
        str | None,
        typer.Option("--month", help="The calendar month, YYYY-MM (default: the last complete)."),
    ] = None,
    route: Annotated[str | None, typer.Option("--route", help="Only this route's SLOs.")] = None,
    output: Annotated[
        str, typer.Option("--format", help="md (markdown) or json.", case_sensitive=False)
    ] = "md",
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """The SLA report of a month: per route each SLO met or missed, the budget spent (as
    requests and minutes), incidents, and the KPIs (volume, CSAT, cost per successful
    request and per session, tokens per feature)."""
    if output.lower() not in ("md", "json"):
        raise fail(f"--format {output}: expected md or json")
    if month is not None:
        try:
            parse_month(month)
        except ValueError as exc:
            raise fail(f"--month: {exc}") from None
    data = call(url, api_key, lambda c: c.slo_report(month=month, route=route, tenant=tenant))
    if output.lower() == "json":
        print(json.dumps(data, indent=2))
    else:
        print(render_markdown(data), end="")


@slo.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The SLO's name.")],
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", help="A tenant's SLO (an admin's choice; default: the key's own scope)."
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Delete an SLO: the evaluator judges it no more, its open alerts resolve (saying why),
    its gauges go; audited as slo.delete."""
    removed = call(url, api_key, lambda client: client.delete_slo(name, tenant=tenant))
    show_removed(removed, "deleted")


def register(app: typer.Typer) -> None:
    """Add `slo ...` to the `trimtab` command."""
    app.add_typer(slo, name="slo")
