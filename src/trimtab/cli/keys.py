"""`trimtab keys create | list | revoke` against a running trimtab."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call
from trimtab.cli.options import DEFAULT_URL, ApiKey, TenantFilter, Url
from trimtab.cli.tables import table

keys = typer.Typer(
    help="Create, list and revoke API keys on a running trimtab (needs an admin key).",
    no_args_is_help=True,
)


@keys.command("create")
def create(
    # the new key's tenant, a field of the key (not a filter: --tenant of `keys list`)
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    role: Annotated[str, typer.Option(help="app, viewer, operator or admin.")],
    owner: Annotated[str, typer.Option(help="The person or service the key belongs to.")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime, like 30d, 12h or 15m.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Create a key; it is printed once and never shown again."""
    made = call(
        url,
        api_key,
        lambda c: c.create_key(
            tenant=tenant, role=role, owner=owner, name=name, expires_in=expires
        ),
    )
    out = Console(soft_wrap=True, highlight=False)
    expiry = f", expires {made['expires_at']}" if made.get("expires_at") else ""
    out.print(
        f"created [bold]{made['id']}[/bold]: tenant {escape(made['tenant'])}, role "
        f"{made['role']}, owner {escape(str(made['owner']))}{expiry}"
    )
    out.print(made["key"], markup=False)
    out.print("[yellow]Store this key now: it is not shown again.[/yellow]")


@keys.command("list")
def list_keys(tenant: TenantFilter = None, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """List keys: from the store and from the configuration file (never the keys themselves)."""
    rows = call(url, api_key, lambda c: c.keys(tenant))
    shown = table("id", "status", "tenant", "role", "owner", "name", "source", "expires")
    colours = {"active": "green", "expired": "yellow", "revoked": "red"}
    for row in rows:
        status = row["status"]
        shown.add_row(
            row["id"],
            f"[{colours.get(status, 'white')}]{status}[/]",
            escape(row["tenant"]),  # names people typed: text, never markup
            row["role"],
            escape(row["owner"] or ""),
            escape(row["name"] or ""),
            row["source"],
            row["expires_at"] or "",
        )
    Console(highlight=False).print(shown)


@keys.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Revoke a key: every gateway refuses it from the next request on."""
    done = call(url, api_key, lambda c: c.revoke_key(key_id))
    Console(highlight=False).print(
        f"revoked [bold]{done['id']}[/bold] (tenant {escape(done['tenant'])}, owner "
        f"{escape(str(done['owner']))}) at {done['revoked_at']}"
    )


def register(app: typer.Typer) -> None:
    """Add `keys ...` to the `trimtab` command."""
    app.add_typer(keys, name="keys")
