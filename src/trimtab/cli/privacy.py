"""`trimtab erase --user U` and `trimtab export --user U`: a person's rights to erasure and
of access, through a running trimtab's API (admin keys only; docs/guardrails.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from trimtab.cli.calls import call
from trimtab.cli.options import DEFAULT_URL, ApiKey, Url
from trimtab.client import Client

User = Annotated[
    str, typer.Option("--user", help="The user tag of the requests (metadata.user of items).")
]
Tenant = Annotated[
    str | None, typer.Option("--tenant", help="Only this tenant's rows (default: every tenant).")
]


def erase(
    user: User,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Erase every request, feedback, dataset item and eval result of a user."""
    done = call(url, api_key, lambda client: client.erase_user(user, tenant=tenant))
    if as_json:
        print(json.dumps(done, indent=2))
        return
    where = f"tenant {tenant}" if tenant else "every tenant"
    print(f"erased user {user} ({where}); audit row {done['audit_action']}:")
    for name, n in done["erased"].items():
        print(f"  {name.replace('_', ' ')}: {n}")


def export(
    user: User,
    tenant: Tenant = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the JSONL here (default: stdout).")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Write everything stored of a user as JSONL, one {kind, data} object a line, as it
    arrives from the server (an export of any size takes constant memory)."""
    if output is None:
        call(url, api_key, lambda client: _write(client, user, tenant, sys.stdout))
        return
    with output.open("w", encoding="utf-8") as file:
        n = call(url, api_key, lambda client: _write(client, user, tenant, file))
    print(f"wrote {n} lines to {output}", file=sys.stderr)


def _write(client: Client, user: str, tenant: str | None, out: TextIO) -> int:
    n = 0
    for line in client.export_user_lines(user, tenant=tenant):
        out.write(line + "\n")
        n += 1
    return n


def register(app: typer.Typer) -> None:
    """Add erase and export to the `trimtab` command."""
    app.command("erase")(erase)
    app.command("export")(export)
