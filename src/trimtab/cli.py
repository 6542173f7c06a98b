"""The `trimtab` command."""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from trimtab import __version__
from trimtab.config import Config, ConfigError, default_config, load_config
from trimtab.registry.commands import Url as Url
from trimtab.registry.commands import call, table_of
from trimtab.registry.commands import register as register_route_commands
from trimtab.rollouts.commands import register as register_rollout_commands
from trimtab.state.redis import redact_url
from trimtab.telemetry.commands import register as register_telemetry_commands

cli = typer.Typer(help="trimtab: an LLMOps control plane.", no_args_is_help=True)
keys_cli = typer.Typer(
    help="Create, list and revoke API keys on a running trimtab (needs an admin key).",
    no_args_is_help=True,
)
cli.add_typer(keys_cli, name="keys")
err = Console(stderr=True)


def _print_version(asked: bool) -> None:
    if asked:
        print(__version__)
        raise typer.Exit()


@cli.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """trimtab: an LLMOps control plane."""


def tune_runtime() -> None:
    """Process-wide settings for a gateway process (measured in docs/benchmarks.md).

    The hot path allocates many short-lived containers; with CPython's default gen-0
    threshold of 700 the collector runs every few requests and its full passes showed up
    as 20-100 ms tail latencies. The shorter switch interval hands the GIL back from the
    telemetry writer thread to the event loop sooner.
    """
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.0005)


def _load(path: Path | None) -> Config:
    if path is None:
        return default_config()
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def banner(cfg: Config) -> str:
    """The start-up line (it goes to logs: the store URL without its password)."""
    return (
        f"trimtab {__version__}: store {redact_url(cfg.store.url)}, "
        f"models {', '.join(cfg.models) or 'none'}, keys {'on' if cfg.keys is not None else 'off'}"
    )


@cli.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the gateway. Without --config: embedded SQLite and a simulator model `sim-1`."""
    import contextlib

    from trimtab.app import create_app
    from trimtab.listen import PortTaken, bind

    cfg = _load(config)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    bind_host = host or cfg.server.host
    bind_port = cfg.server.port if port is None else port
    try:  # before the store is touched: a taken port creates no database, migrates nothing
        sock = bind(bind_host, bind_port)
    except PortTaken as exc:
        err.print(f"trimtab serve: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    tune_runtime()
    err.print(banner(cfg), markup=False, highlight=False)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(cfg, freeze_gc=True),
            host=bind_host,
            port=bind_port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level=log_level,
            timeout_graceful_shutdown=30,
        )
    )
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is a stop
        server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(3)  # uvicorn's start-up failure code; its reason is in the log


@cli.command("check-config")
def check_config(path: Path) -> None:
    """Validate a config file and print what it declares."""
    cfg = _load(path)
    out = Console()
    out.print(f"[green]ok[/green] {path}: store {redact_url(cfg.store.url)}")
    for name, model in cfg.models.items():
        pool = model.pool(name)
        served = [f"{d.provider}:{d.model or name}" for d in pool]
        if len(pool) > 1:  # a weighted pool: each deployment with its weight
            served = [f"{s} (weight {d.weight:g})" for s, d in zip(served, pool, strict=True)]
        out.print(f"  model {name} -> {', '.join(served)}", highlight=False, soft_wrap=True)


@cli.command()
def version() -> None:
    """Print the version."""
    print(__version__)


# -- trimtab keys ... -------------------------------------------------------------------

DEFAULT_URL = "http://127.0.0.1:4000"
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="TRIMTAB_API_KEY", help="An admin key of that server."),
]


@keys_cli.command("create")
def keys_create(
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
        f"created [bold]{made['id']}[/bold]: tenant {made['tenant']}, role {made['role']}, "
        f"owner {made['owner']}{expiry}"
    )
    out.print(made["key"], markup=False)
    out.print("[yellow]Store this key now: it is not shown again.[/yellow]")


@keys_cli.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List keys: from the store and from the configuration file (never the keys themselves)."""
    rows = call(url, api_key, lambda c: c.keys(tenant))
    table = table_of("id", "status", "tenant", "role", "owner", "name", "source", "expires")
    colours = {"active": "green", "expired": "yellow", "revoked": "red"}
    for row in rows:
        status = row["status"]
        table.add_row(
            row["id"],
            f"[{colours.get(status, 'white')}]{status}[/]",
            row["tenant"],
            row["role"],
            row["owner"] or "",
            row["name"] or "",
            row["source"],
            row["expires_at"] or "",
        )
    Console(highlight=False).print(table)


@keys_cli.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Revoke a key: every gateway refuses it from the next request on."""
    done = call(url, api_key, lambda c: c.revoke_key(key_id))
    Console(highlight=False).print(
        f"revoked [bold]{done['id']}[/bold] (tenant {done['tenant']}, owner {done['owner']}) "
        f"at {done['revoked_at']}"
    )


register_route_commands(cli)  # apply, routes, versions, diff, timeline
register_rollout_commands(cli)  # rollout ..., rollback, attest
register_telemetry_commands(cli)  # requests, request, summary


def main() -> None:
    cli()
