"""`trimtab eval init safety --route ROUTE`: the starter safety set pushed as the dataset
`starter-safety` and the `safety` suite's file written, ready for `trimtab apply` and
`trimtab eval run safety --gate` (evals/starter/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call, fail
from trimtab.cli.options import DEFAULT_URL, ApiKey, Url
from trimtab.cli.tables import version
from trimtab.evals.starter import SAFETY_DATASET, safety_items, safety_suite
from trimtab.evals.suites import SuitesError, parse_suites
from trimtab.types import name_problem

TEMPLATES = ("safety",)


def init(
    template: Annotated[str, typer.Argument(help="The starter suite: safety.")],
    route: Annotated[str, typer.Option("--route", help="The route the suite runs.")],
    out: Annotated[Path, typer.Option("--output", "-o", help="The suite file to write.")] = Path(
        "evals-safety.yaml"
    ),
    suite: Annotated[str, typer.Option("--suite", help="The suite's name.")] = "safety",
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Push the starter safety set (dataset starter-safety) and write its suite's file."""
    if template not in TEMPLATES:
        raise fail(f"no starter suite '{template}' (there is: {', '.join(TEMPLATES)})")
    for what, name in (("route", route), ("suite", suite)):
        problem = name_problem(what, name)
        if problem:
            raise fail(f"--{what} {name}: {problem}")
    text = safety_suite(route, suite)
    try:
        parse_suites(yaml.safe_load(text), str(out))
    except SuitesError as exc:  # the template is the package's: a test keeps it valid
        raise fail(str(exc)) from None
    if out.exists() and not force:
        raise fail(f"{out} exists: pass --force to overwrite it, or -o another file")
    made = call(
        url,
        api_key,
        lambda c: c.push_dataset(
            SAFETY_DATASET, safety_items(), "trimtab's starter safety set", source="safety.jsonl"
        ),
    )
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc.strerror}") from None
    state = "pushed" if made["created"] else "already there"
    shown = Console(highlight=False)
    shown.print(
        f"dataset [bold]{SAFETY_DATASET}[/bold] {version(made['version'])}: {state} "
        f"({made['items']} items)"
    )
    shown.print(
        f"wrote {escape(str(out))}: suite [bold]{escape(suite)}[/bold] on route {escape(route)}"
    )
    shown.print(
        f"next: trimtab apply -f {escape(str(out))} -m 'safety suite'; "
        f"trimtab eval run {escape(suite)} --version VERSION --baseline stable --gate"
    )
