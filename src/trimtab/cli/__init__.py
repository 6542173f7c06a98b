"""The `trimtab` command: one module per command group over the shared options
(`options.py`), the one request helper (`calls.py`) and the one table builder
(`tables.py`)."""

from __future__ import annotations

from typing import Annotated

import typer

from trimtab import __version__
from trimtab.cli import (
    alerts,
    costs,
    datasets,
    evals,
    incidents,
    keys,
    privacy,
    requests,
    rollouts,
    routes,
    serve,
    slo,
)

cli = typer.Typer(help="trimtab: an LLMOps control plane.", no_args_is_help=True)


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


serve.register(cli)  # serve, check-config, version
keys.register(cli)  # keys create | list | revoke
routes.register(cli)  # apply, routes, versions, diff, timeline
rollouts.register(cli)  # rollout ..., rollback, attest
requests.register(cli)  # requests, request, summary
datasets.register(cli)  # datasets push | list | show | export | diff
evals.register(cli)  # eval run | resume | show | list | compare
slo.register(cli)  # slo status | report
incidents.register(cli)  # incident open | list | show | note | contain | ... | close
costs.register(cli)  # costs forecast | economics
privacy.register(cli)  # erase, export (a user's data)
alerts.register(cli)  # alerts list | show | ack | silence | silences | unsilence


def main() -> None:
    cli()


__all__ = ["cli", "main"]
