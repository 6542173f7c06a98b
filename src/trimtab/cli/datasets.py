"""`trimtab datasets push | add | list | show | export | diff` against a running trimtab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call, fail, file_refused, request_id
from trimtab.cli.options import DEFAULT_URL, ApiKey, Url
from trimtab.cli.tables import table, version, when
from trimtab.client import Client, TrimtabError
from trimtab.client.types import DatasetItem
from trimtab.evals.datasets import DatasetError, format_of

datasets = typer.Typer(
    help="Push, list, show, export and compare eval datasets on a running trimtab.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The dataset's name.")]
# dataset names are per tenant like route names: NAME is the caller's tenant's, else shared
Tenant = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="The dataset of this tenant (a non-admin may name only its own; '' for the "
        "shared one).",
    ),
]
Version = Annotated[
    str, typer.Option("--version", help="The version, as 3 or v3 (default: the newest).")
]

_CELL = 60  # characters of an item's input or expected answer in `show`


def _short(digest: str) -> str:
    return digest[:12]


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _CELL else text[: _CELL - 3] + "..."


def _json(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _input(item: DatasetItem) -> str:
    """An item's input in a line: its variables, or its messages' roles and last text."""
    messages = item.get("messages")
    if messages is not None:
        last = messages[-1]
        content = last.get("content")
        said = content if isinstance(content, str) else _json(content)
        return _clip(f"{len(messages)} message(s); {last.get('role')}: {said}")
    variables = item.get("variables") or {}
    return _clip(", ".join(f"{k}={_json(v)}" for k, v in variables.items()))


@datasets.command("push")
def push(
    name: Name,
    file: Annotated[Path, typer.Option("--file", "-f", help="A .jsonl or .csv file of items.")],
    message: Annotated[
        str | None,
        typer.Option("--message", "-m", help="What this version is for (default: the file)."),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="An admin's: whose dataset ('' for a shared one)."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Push a file as the dataset's next version; the same items again make no new one."""
    try:
        fmt = format_of(file.name)
    except DatasetError as exc:
        raise fail(str(exc)) from None
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    why = message or f"push {file.name}"
    made = call(
        url,
        api_key,
        lambda c: c.push_dataset(name, text, why, format=fmt, source=str(file), tenant=tenant),
        file_refused(file, "invalid_dataset", "nothing was stored"),
    )
    whose = f" (tenant {escape(made['tenant'])})" if made["tenant"] else " (shared)"
    label = f"[bold]{escape(made['dataset'])}[/bold]{whose}"
    if made["created"]:
        Console(highlight=False).print(
            f"{label}: [green]created {version(made['version'])}[/green] "
            f"({made['items']} items, {_short(made['digest'])})"
        )
    else:
        Console(highlight=False).print(
            f"{label}: unchanged: {version(made['version'])} holds these items "
            f"({made['items']} items, {_short(made['digest'])})"
        )


@datasets.command("add")
def add(
    name: Name,
    from_requests: Annotated[
        bool,
        typer.Option("--from-requests", help="Add recorded requests of --route (the one source)."),
    ] = False,
    route: Annotated[str | None, typer.Option("--route", help="The route.")] = None,
    route_version: Annotated[
        str | None, typer.Option("--version", help="Only this version's requests (v2).")
    ] = None,
    feedback: Annotated[
        str | None, typer.Option("--feedback", help="negative: only requests rated down.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="error: only requests that failed.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="How far back: 7d, 12h.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="Requests read, newest first.")
    ] = 100,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="What this version is for.")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="An admin's: whose dataset ('' for a shared one)."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Add recorded requests (their variables or messages; the answer given kept as
    metadata.observed) as the dataset's next version, deduplicated by input."""
    if not from_requests or route is None:
        raise fail("give --from-requests --route ROUTE: recorded requests are what add adds")
    if feedback not in (None, "negative"):
        raise fail(f"--feedback {feedback}: only 'negative' is known")
    if status not in (None, "error"):
        raise fail(f"--status {status}: only 'error' is known")

    def ask(c: Client) -> dict[str, Any]:
        return c.dataset_from_requests(
            name, route, version=route_version, negative_feedback=feedback == "negative",
            errors=status == "error", since=since, limit=limit, message=message, tenant=tenant,
        )  # fmt: skip

    made = call(url, api_key, ask)
    label = f"[bold]{escape(made['dataset'])}[/bold]"
    state = (
        f"[green]created {version(made['version'])}[/green]"
        if made["created"]
        else f"unchanged at {version(made['version'])}"
    )
    Console(highlight=False).print(
        f"{label}: {state} ({made['items']} items): {made['considered']} requests read, "
        f"{made['added']} added, {made['duplicates']} duplicate inputs, "
        f"{made['unusable']} skipped without a usable body"
    )


@datasets.command("list")
def list_datasets(
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Only this tenant's and the shared (an admin's choice)."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List the datasets this key may see, each with its newest version."""
    rows = call(url, api_key, lambda c: c.datasets(tenant=tenant))
    shown = table(
        "dataset",
        "tenant",
        "version",
        "items",
        "digest",
        "created (UTC)",
        "message",
        right=("items",),
    )
    for row in rows:
        shown.add_row(
            escape(row["dataset"]),
            escape(row["tenant"] or "(shared)"),
            version(row["version"]),
            str(row["items"]),
            _short(row["digest"]),
            when(row["created_at"]),
            escape(row["message"]),
        )
    Console(highlight=False).print(shown)


@datasets.command("show")
def show(
    name: Name,
    number: Version = "latest",
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show a version (default: the newest) and its items."""
    found = call(url, api_key, lambda c: c.dataset_version(name, number, tenant=tenant))
    out = Console(highlight=False)
    whose = escape(found["tenant"] or "(shared)")
    out.print(
        f"[bold]{escape(found['dataset'])}[/bold] {version(found['version'])} ({whose}): "
        f"{found['items']} items, {_short(found['digest'])}, {when(found['created_at'])} "
        f"by {escape(found['author'] or 'anonymous (keys off)')}: {escape(found['message'])}"
    )
    shown = table("id", "input", "expected", "tags")
    for item in found["data"]:
        expected = item.get("expected")
        shown.add_row(
            escape(item["id"]),
            escape(_input(item)),
            "" if expected is None else escape(_clip(_json(expected))),
            escape(", ".join(item.get("tags", []))),
        )
    out.print(shown)


@datasets.command("export")
def export(
    name: Name,
    output: Annotated[Path, typer.Option("--output", "-o", help="The JSONL file to write.")],
    number: Version = "latest",
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Write a version's items as JSONL: a file `push` takes back as the same version."""
    found = call(url, api_key, lambda c: c.dataset_version(name, number, tenant=tenant))
    lines = b"".join(orjson.dumps(item) + b"\n" for item in found["data"])
    try:
        output.write_bytes(lines)
    except OSError as exc:
        raise fail(f"{output}: cannot write: {exc.strerror}") from None
    Console(highlight=False).print(
        f"wrote {len(found['data'])} items of [bold]{escape(found['dataset'])}[/bold] "
        f"{version(found['version'])} ({_short(found['digest'])}) to {escape(str(output))}"
    )


@datasets.command("diff")
def diff(
    name: Name,
    before: Annotated[
        str | None, typer.Argument(help="From this version (default: the one before TO).")
    ] = None,
    after: Annotated[str | None, typer.Argument(help="To this version (default: newest).")] = None,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show the items added, removed and changed between two versions, by id."""
    before, after = before or None, after or None  # '' is the default, as with no argument

    def first_version(exc: TrimtabError) -> str | None:
        if before is None and exc.param == "from":
            return (
                f"{after or 'the newest version'} of '{name}' is its first version: there is "
                f"nothing before it; `trimtab datasets diff {name} V1 V2` compares two"
                f"{request_id(exc)}"
            )
        return None

    changes = call(
        url,
        api_key,
        lambda c: c.dataset_diff(name, before, after, tenant=tenant),
        first_version,
    )
    out = Console(highlight=False, soft_wrap=True)
    out.print(
        f"[bold]{escape(changes['dataset'])}[/bold]: {version(changes['from'])} -> "
        f"{version(changes['to'])}: {len(changes['added'])} added, "
        f"{len(changes['removed'])} removed, {len(changes['changed'])} changed"
    )
    for mark, style, ids in (
        ("+", "green", changes["added"]),
        ("-", "red", changes["removed"]),
        ("~", "yellow", changes["changed"]),
    ):
        for item_id in ids:
            out.print(f"[{style}]{mark} {escape(item_id)}[/{style}]")


def register(app: typer.Typer) -> None:
    """Add `datasets ...` to the `trimtab` command."""
    app.add_typer(datasets, name="datasets")
