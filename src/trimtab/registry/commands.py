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

from trimtab.client import DEFAULT_URL, Client, TrimtabError
from trimtab.client.types import Event

# who changed a route while keys were off: the store keeps no name
ANONYMOUS = "anonymous (keys off)"

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
Advice = Callable[[TrimtabError], str | None]


def _rid(exc: TrimtabError) -> str:
    return f" (request id: {exc.request_id})" if exc.request_id else ""


def cli_message(exc: TrimtabError, advice: Advice | None = None) -> str:
    """The server's refusal as a person on a terminal needs it: the server's message, or,
    where that is written for HTTP callers, what to type instead."""
    said = advice(exc) if advice is not None else None
    if said is not None:
        return said
    if exc.code == "missing_api_key":
        return f"{exc.status}: no API key: set TRIMTAB_API_KEY or pass --api-key{_rid(exc)}"
    return str(exc)


def call(
    url: str,
    api_key: str | None,
    request: Callable[[Client], T],
    advice: Advice | None = None,
) -> T:
    """One request to the server; an error it answers ends the command with its message
    (`advice` may put it in the CLI's words: None keeps the server's)."""
    try:
        with Client(url, api_key) as client:
            return request(client)
    except TrimtabError as exc:
        raise _fail(cli_message(exc, advice)) from None


def table_of(*columns: str) -> Table:
    """A borderless table; on a narrow terminal its cells wrap, or fold where a word is too
    long, and are never cut short (an id or an owner half shown is no use)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
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
    results = call(url, api_key, lambda client: client.apply(text, message, source=str(file)))
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
    rows = call(url, api_key, lambda client: client.routes())
    table = table_of("route", "stable", "latest", "owner", "risk", "tenant", "updated")
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
    table = table_of("version", "", "digest", "created (UTC)", "author", "message")
    for row in rows:
        table.add_row(
            row["version"],
            "[green]stable[/green]" if row["stable"] else "",
            _short(row["digest"]),
            _when(row["created_at"]),
            escape(row["author"] or ANONYMOUS),
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

    def first_version(exc: TrimtabError) -> str | None:
        if before is None and exc.param == "from":
            newest = after or "the newest version"
            return (
                f"{newest} of '{route}' is its first version: there is nothing before it to "
                f"compare with; `trimtab diff {route} FROM TO` compares two versions{_rid(exc)}"
            )
        return None

    changes = call(url, api_key, lambda client: client.diff(route, before, after), first_version)
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
    route: Annotated[str, typer.Argument(help="The route's name.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show a route's timeline, oldest first: what happened, to which version, who, why."""
    events = call(url, api_key, lambda client: client.timeline(route))
    table = table_of("at (UTC)", "event", "version", "actor", "reason")
    for event in events:
        table.add_row(
            _when(event["at"]),
            escape(_event(event)),
            _v(event["version"]),
            escape(event["actor"] or ANONYMOUS),
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
