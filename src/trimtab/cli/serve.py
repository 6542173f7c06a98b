"""`trimtab serve`, `check-config` and `version`: the gateway process and its configuration."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trimtab import __version__
from trimtab.cli.options import Config as ConfigFile
from trimtab.config import Config, ConfigError, default_config, load_config
from trimtab.state.urls import redact_url


def tune_runtime() -> None:
    """Process-wide settings for a gateway process (measured in docs/benchmarks.md).

    The hot path allocates many short-lived containers; with CPython's default gen-0
    threshold of 700 the collector runs every few requests and its full passes showed up
    as 20-100 ms tail latencies. The shorter switch interval hands the GIL back from the
    telemetry writer thread to the event loop sooner.
    """
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.0005)


def _err() -> Console:
    return Console(stderr=True)


def _load(path: Path | None) -> Config:
    if path is None:
        return default_config()
    try:
        return load_config(path)
    except ConfigError as exc:
        _err().print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def banner(cfg: Config) -> str:
    """The start-up line (it goes to logs: the store URL without its password)."""
    return (
        f"trimtab {__version__}: store {redact_url(cfg.store.url)}, "
        f"models {', '.join(cfg.models) or 'none'}, keys {'on' if cfg.keys is not None else 'off'}"
    )


def serve(
    config: ConfigFile = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Gateway processes on this port, under a supervisor that restarts them. "
            "More than one needs state.url (Redis) when limits or budgets are set."
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the gateway. Without --config: embedded SQLite and a simulator model `sim-1`."""
    from trimtab.cli import workers as supervision
    from trimtab.listen import PortTaken, bind

    cfg = _load(config)
    problem = supervision.worker_problem(cfg, workers)
    if problem is not None:
        _err().print(f"trimtab serve: {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    bind_host = host or cfg.server.host
    bind_port = cfg.server.port if port is None else port
    try:  # before the store is touched: a taken port creates no database, migrates nothing
        sock = bind(bind_host, bind_port)
    except PortTaken as exc:
        _err().print(f"trimtab serve: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    _err().print(banner(cfg), markup=False, highlight=False)
    if workers == 1:
        if not run_server(cfg, sock, log_level):
            raise typer.Exit(3)  # uvicorn's start-up failure code; its reason is in the log
        return
    from trimtab.store.engine import make_engine, migrate
    from trimtab.telemetry.spill import SpillFile

    engine = make_engine(cfg.store.url)
    try:
        migrate(engine)  # once, before the workers start
    finally:
        engine.dispose()
    # spill files no worker of this run reads: worker 0 replays them at its start
    SpillFile(supervision.spill_path(cfg, 0)).adopt(supervision.orphan_spills(cfg, workers))
    sock.listen(2048)
    code = supervision.Supervisor(cfg, sock, workers, log_level, run_worker).run()
    if code:
        raise typer.Exit(code)


def run_server(cfg: Config, sock: socket.socket, log_level: str) -> bool:
    """Serve on `sock` until stopped; False when the server did not start."""
    import uvicorn  # the server's imports, only for the command that serves

    from trimtab.app import create_app
    from trimtab.cli.server import DrainingServer

    tune_runtime()
    host, port = sock.getsockname()[:2]
    server = DrainingServer(
        uvicorn.Config(
            create_app(cfg, freeze_gc=True),
            host=host,  # for its log line: it serves on `sock`
            port=port,
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
    return bool(server.started)


def run_worker(cfg: Config, sock: socket.socket, index: int, log_level: str) -> None:
    """One worker of `serve --workers N` (the supervisor's target, in a spawned process)."""
    os.setpgrp()  # Ctrl-C reaches the supervisor alone, which stops each worker once
    logging.basicConfig(
        level=log_level.upper(), format=f"%(levelname)s worker {index} %(name)s: %(message)s"
    )
    if not run_server(cfg, sock, log_level):
        raise SystemExit(3)


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


def version() -> None:
    """Print the version."""
    print(__version__)


def register(app: typer.Typer) -> None:
    """Add serve, check-config and version to the `trimtab` command."""
    app.command("serve")(serve)
    app.command("check-config")(check_config)
    app.command("version")(version)
