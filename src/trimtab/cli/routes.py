"""`trimtab apply | routes | versions | diff | timeline` against a running trimtab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from trimtab.cli import applying
from trimtab.cli.calls import call, request_id
from trimtab.cli.options import DEFAULT_URL, ApiKey, Tenant, Url
from trimtab.cli.tables import table, version, when
from trimtab.client import TrimtabError
from trimtab.client.types import Applied, Event

# who changed a route while keys were off: the store keeps no name
ANONYMOUS = "anonymous (keys off)"

Route = Annotated[str, typer.Argument(help="The route's name.")]


def _short(digest: str | None) -> str:
    return (digest or "")[:12]


def apply(
    files: Annotated[
        list[Path],
        typer.Option(
            "--file", "-f", help="A file (YAML): routes:, slos:, evals:; repeat for several."
        ),
    ],
    message: Annotated[str, typer.Option("--message", "-m", help="Why these routes change.")],
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete the SLOs of your scope that no file's slos: section names "
            "(an admin's: the shared ones); printed.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="With --prune: print what the SLOs would become, change nothing."
        ),
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Apply files: a new version for each route whose content changed, each SLO of their
    `slos:` sections and each eval suite of their `evals:` sections; every file is checked
    first, and one problem anywhere applies nothing (cli/applying.py)."""
    applying.apply_files(files, message, url, api_key, _show, prune=prune, dry_run=dry_run)


def _show(results: list[Applied]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    for r in results:
        name = f"[bold]{escape(r['route'])}[/bold]"
        stable = f"stable {version(r['stable_version'])}"
        updated = ", ".join(
            f"{k} {escape(str(a))} -> {escape(str(b))}" for k, (a, b) in r["updated"].items()
        )
        if r["status"] == "created":
            origin = "new route" if r["new_route"] else f"parent {version(r['parent'])}"
            same = f", same content as {version(r['same_as'])}" if r.get("same_as") else ""
            extra = f"; {updated}" if updated else ""
            out.print(
                f"{name}: [green]created {version(r['version'])}[/green] "
                f"({origin}{same}; {stable}; {_short(r['digest'])}){extra}"
            )
        elif r["status"] == "updated":
            out.print(f"{name}: [yellow]updated[/yellow] {updated} (still {version(r['version'])})")
        else:
            out.print(f"{name}: unchanged at {version(r['version'])} ({stable})")


def routes(url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """List the routes, with their stable and newest versions."""
    rows = call(url, api_key, lambda client: client.routes())
    shown = table("route", "stable", "latest", "owner", "risk", "tenant", "updated")
    for row in rows:
        shown.add_row(
            escape(row["name"]),
            version(row["stable_version"]),
            version(row["latest_version"]),
            escape(row["owner"]),  # as written in the routes file: text, never markup
            str(row["risk_tier"]),
            escape(row["tenant"] or "(shared)"),
            when(row["updated_at"]),
        )
    Console(highlight=False).print(shown)


def versions(
    route: Route, tenant: Tenant = None, url: Url = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """List a route's versions, newest first; the stable one is marked."""
    rows = call(url, api_key, lambda client: client.versions(route, tenant=tenant))
    shown = table("version", "", "digest", "created (UTC)", "author", "message")
    for row in rows:
        shown.add_row(
            row["version"],
            "[green]stable[/green]" if row["stable"] else "",
            _short(row["digest"]),
            when(row["created_at"]),
            escape(row["author"] or ANONYMOUS),
            escape(row["message"]),
        )
    Console(highlight=False).print(shown)


def diff(
    route: Route,
    before: Annotated[
        str | None, typer.Argument(help="From this version (default: the parent of TO).")
    ] = None,
    after: Annotated[str | None, typer.Argument(help="To this version (default: newest).")] = None,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show what changed between two versions: model, parameters, message texts."""

    def first_version(exc: TrimtabError) -> str | None:
        if before is None and exc.param == "from":
            newest = after or "the newest version"
            return (
                f"{newest} of '{route}' is its first version: there is nothing before it to "
                f"compare with; `trimtab diff {route} FROM TO` compares two versions"
                f"{request_id(exc)}"
            )
        return None

    changes = call(
        url, api_key, lambda client: client.diff(route, before, after, tenant=tenant), first_version
    )
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"[bold]{escape(route)}[/bold]: {changes['from']} -> {changes['to']}")
    for line in changes["unified"].splitlines():
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith(("+", "  +")):
            style = "green"
        elif line.startswith(("-", "  -")):
            style = "red"
        elif line.startswith(("  ~", "model:")):
            style = "yellow"
        out.print(Text(line, style=style))


def _event(event: Event) -> str:
    """What happened, with what an attestation said ("attestation eval pass")."""
    detail = event.get("detail") or {}
    if event["kind"] == "attestation" and detail.get("kind"):
        return f"attestation {detail['kind']} {detail.get('result', '')}".rstrip()
    return event["kind"]


def timeline(
    route: Route, tenant: Tenant = None, url: Url = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """Show a route's timeline, oldest first: what happened, to which version, who, why."""
    events = call(url, api_key, lambda client: client.timeline(route, tenant=tenant))
    shown = table("at (UTC)", "event", "version", "actor", "reason")
    for event in events:
        shown.add_row(
            when(event["at"]),
            escape(_event(event)),
            version(event["version"]),
            escape(event["actor"] or ANONYMOUS),
            escape(event["reason"] or ""),
        )
    Console(highlight=False).print(shown)


def register(app: typer.Typer) -> None:
    """Add the route commands to the `trimtab` command."""
    app.command("apply")(apply)
    app.command("routes")(routes)
    app.command("versions")(versions)
    app.command("diff")(diff)
    app.command("timeline")(timeline)
