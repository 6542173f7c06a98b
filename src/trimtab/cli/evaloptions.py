"""The options the `trimtab eval` commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RunId = Annotated[str, typer.Argument(help="The run's id (run_...).")]
SuiteName = Annotated[
    str, typer.Argument(help="The suite: applied with `trimtab apply`, or in --file's evals:.")
]
SuiteFile = Annotated[
    Path | None,
    typer.Option(
        "--file", "-f", help="A YAML file with the evals: section (default: the applied suite)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")]
ReportPath = Annotated[
    Path | None,
    typer.Option("--report", help="Also write the result as a report: a .md or .html file."),
]
Concurrency = Annotated[
    int,
    typer.Option("--concurrency", min=1, max=256, help="Calls in flight at once."),
]
NoCache = Annotated[
    bool,
    typer.Option(
        "--no-cache", help="Call every item, even one an earlier run of this target answered."
    ),
]
GatewayUrl = Annotated[
    str | None,
    typer.Option(
        "--gateway",
        envvar="TRIMTAB_GATEWAY_URL",
        help="The gateway the calls go to (default: --url, the same server).",
    ),
]
GatewayKey = Annotated[
    str | None,
    typer.Option(
        "--gateway-key",
        envvar="TRIMTAB_GATEWAY_KEY",
        help="The key the calls carry (default: --api-key; it needs a role that calls models).",
    ),
]
