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

cli = typer.Typer(help="trimtab: an LLMOps control plane.", no_args_is_help=True)
err = Console(stderr=True)


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


@cli.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the gateway. Without --config: embedded SQLite and a simulator model `sim-1`."""
    from trimtab.app import create_app

    cfg = _load(config)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    bind_host = host or cfg.server.host
    bind_port = cfg.server.port if port is None else port
    tune_runtime()
    err.print(
        f"trimtab {__version__}: store {cfg.store.url}, models {', '.join(cfg.models) or 'none'}"
        f", keys {'on' if cfg.keys is not None else 'off'}"
    )
    uvicorn.run(
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


@cli.command("check-config")
def check_config(path: Path) -> None:
    """Validate a config file and print what it declares."""
    cfg = _load(path)
    out = Console()
    out.print(f"[green]ok[/green] {path}: store {cfg.store.url}")
    for name, model in cfg.models.items():
        out.print(f"  model {name} -> {model.provider}:{cfg.upstream_model(name)}")


@cli.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    cli()
