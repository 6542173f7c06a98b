"""The options every command shares, declared once: the same flag means the same thing,
with the same environment variable and help, on every command that takes it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trimtab.client import DEFAULT_URL as DEFAULT_URL

# the server and its key: on every command that talks to a running trimtab
Url = Annotated[
    str, typer.Option("--url", envvar="TRIMTAB_URL", help="The trimtab server.", show_default=True)
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TRIMTAB_API_KEY",
        help="A key of that server: viewer to read; operator or admin to change routes and "
        "rollouts; admin for keys.",
    ),
]

# route names are per tenant: a caller's NAME is its tenant's route, else the shared one
Tenant = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="The route of this tenant (an admin may name any; '' for the shared one).",
    ),
]
# a listing's filter: a key reads its own tenant's records; an admin may pick any
TenantFilter = Annotated[
    str | None,
    typer.Option(
        "--tenant", help="Only this tenant's (an admin may name any; other keys read their own)."
    ),
]

Config = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
