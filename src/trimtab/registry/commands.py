"""`trimtab apply | routes | versions | diff | timeline` against a running trimtab."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from trimtab.keys.client import ClientError
from trimtab.registry.client import RoutesClient

DEFAULT_URL = "http://127.0.0.1:4000"
Url = Annotated[
    str, typer.Option("--url", envvar="TRIMTAB_URL", help="The trimtab server.", show_default=True)
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TRIMTAB_API_KEY",
        help="A key of that server (viewer to read; operator or admin to apply).",
    ),
]
_err = Console(stderr=True, highlight=False)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


T = TypeVar("T")


def call(url: str, api_key: str | None, request: Callable[[RoutesClient], T]) -> T:
    """One request to the server; an error it answers ends the command with its message."""
    try:
        with RoutesClient(url, api_key) as client:
            return request(client)
    except ClientError as exc:
        raise _fail(str(exc)) from None


def table_of(*columns: str, wrap: str) -> Table:
    """A borderless table whose columns do not wrap, except `wrap` (the free text)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=column != wrap)
    return table


def _short(digest: str | None) -> str:
    return (digest or "")[:12]


def _when(iso: str | None) -> str:
    """An ISO 8601 time as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _v(number: Any) -> str:
    return "" if number is None else f"v{number}"


def apply(
    file: Annotated[Path, typer.Option("--file", "-f", help="The routes file (YAML).")],
    message: Annotated[str, typer.Option("--message", "-m", help="Why these routes change.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Apply a routes file: a new version for each route whose content changed."""
    try:
        text = file.read_text()
    except OSError as exc:
        raise _fail(f"{file}: cannot read: {exc.strerror}") from None
    results = call(url, api_key, lambda client: client.apply(text, str(file), message))
    out = Console(highlight=False, soft_wrap=True)
    for r in results:
        name = f"[bold]{escape(r['route'])}[/bold]"
        stable = f"stable {_v(r['stable_version'])}"
        updated = ", ".join(
            f"{k} {escape(str(a))} -> {escape(str(b))}" for k, (a, b) in r["updated"].items()
        )
        if r["status"] == "created":
            origin = "new route" if r["new_route"] else f"parent {_v(r['parent'])}"
            same = f", same content as {_v(r['same_as'])}" if r.get("same_as") else ""
            extra = f"; {updated}" if updated else ""
            out.print(
                f"{name}: [green]created {_v(r['version'])}[/green] "
                f"({origin}{same}; {stable}; {_short(r['digest'])}){extra}"
            )
        elif r["status"] == "updated":
            out.print(f"{name}: [yellow]updated[/yellow] {updated} (still {_v(r['version'])})")
        else:
            out.print(f"{name}: unchanged at {_v(r['version'])} ({stable})")


def routes(url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """List the routes, with their stable and newest versions."""
    rows = call(url, api_key, lambda client: client.list_routes())
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("route", "stable", "latest", "owner", "risk", "tenant", "updated"):
        table.add_column(column, no_wrap=column in ("route", "stable", "latest"))
    for row in rows:
        table.add_row(
            row["name"],
            _v(row["stable_version"]),
            _v(row["latest_version"]),
            row["owner"],
            str(row["risk_tier"]),
            row["tenant"] or "(shared)",
            _when(row["updated_at"]),
        )
    Console(highlight=False).print(table)


def versions(
    route: Annotated[str, typer.Argument(help="The route's name.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List a route's versions, newest first; the stable one is marked."""
    rows = call(url, api_key, lambda client: client.versions(route))
    table = table_of("version", "", "digest", "created (UTC)", "author", "message", wrap="message")
    for row in rows:
        table.add_row(
            row["version"],
            "[green]stable[/green]" if row["stable"] else "",
            _short(row["digest"]),
            _when(row["created_at"]),
            escape(row["author"] or ""),
            escape(row["message"]),
        )
    Console(highlight=False).print(table)


def diff(
    route: Annotated[str, typer.Argument(help="The route's name.")],
    before: Annotated[
        str | None, typer.Argument(help="From this version (default: the parent of TO).")
    ] = None,
    after: Annotated[str | None, typer.Argument(help="To this version (default: newest).")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show what changed between two versions: model, parameters, message texts."""
    changes = call(url, api_key, lambda client: client.diff(route, before, after))
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


def timeline(
    route: Annotated[str, typer.Argument(help="The route's name.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show a route's timeline, oldest first: what happened, to which version, who, why."""
    events = call(url, api_key, lambda client: client.timeline(route))
    table = table_of("at (UTC)", "event", "version", "actor", "reason", wrap="reason")
    for event in events:
        table.add_row(
            _when(event["at"]),
            event["kind"],
            _v(event["version"]),
            escape(event["actor"] or ""),
            escape(event["reason"] or ""),
        )
    Console(highlight=False).print(table)


def register(app: typer.Typer) -> None:
    """Add the route commands to the `trimtab` command."""
    app.command("apply")(apply)
    app.command("routes")(routes)
    app.command("versions")(versions)
    app.command("diff")(diff)
    app.command("timeline")(timeline)
