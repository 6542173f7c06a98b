"""`trimtab eval bakeoff`: one suite's dataset run against several models or route
versions, and the scorecard of the runs side by side."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call, fail, message
from trimtab.cli.evaloptions import (
    Concurrency,
    GatewayKey,
    GatewayUrl,
    Json,
    NoCache,
    ReportPath,
    SuiteFile,
    SuiteName,
)
from trimtab.cli.evalrun import finish
from trimtab.cli.evalsuite import suite_source
from trimtab.cli.evalviews import report_format, write_report
from trimtab.cli.options import DEFAULT_URL, ApiKey, Url
from trimtab.client import Client, TrimtabError
from trimtab.client.types import EvalRunDetail
from trimtab.evals import report
from trimtab.evals.bakeoff import Column, scorecard
from trimtab.evals.runner import DEFAULT_CONCURRENCY


def _listed(option: str, text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise fail(f"{option}: '{twice[0]}' is named twice")
    if len(names) < 2:
        raise fail(f"{option}: a bake-off compares at least two, comma-separated: a,b")
    return names


def bakeoff(
    suite: SuiteName,
    file: SuiteFile = None,
    models: Annotated[
        str | None,
        typer.Option("--models", help="Models to run a model suite against: a,b,c."),
    ] = None,
    versions: Annotated[
        str | None,
        typer.Option("--versions", help="Route versions to run a route suite against: 1,2,3."),
    ] = None,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    no_cache: NoCache = False,
    gateway_url: GatewayUrl = None,
    gateway_key: GatewayKey = None,
    report_to: ReportPath = None,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Run one suite's dataset against several models or route versions and print the
    scorecard: each scorer's mean and pass rate, latency, cost, errors, and the verdicts
    against the first column."""
    fmt = report_format(report_to)
    definition, source = suite_source(file, suite, url, api_key)
    if (models is None) == (versions is None):
        raise fail("give --models a,b,c (a suite with model:) or --versions 1,2 (with route:)")
    if models is not None and "model" not in definition:
        raise fail(
            f"suite '{suite}' runs route '{definition.get('route')}': a bake-off of models "
            "needs a suite with model:, or compare the route's versions with --versions"
        )
    if versions is not None and "route" not in definition:
        raise fail(f"suite '{suite}' runs a model: --versions compares a route's versions")
    labels = _listed("--models" if models is not None else "--versions", models or versions or "")
    runs: list[EvalRunDetail] = []
    for label in labels:
        at = None if models is not None else label
        defined = {**definition, "model": label} if models is not None else definition

        def start(c: Client, d: dict[str, Any] = defined, v: str | None = at) -> EvalRunDetail:
            return c.create_eval_run(suite, d, version=v, source=source)

        made = call(url, api_key, start)
        if not as_json:
            Console(stderr=True, highlight=False).print(
                f"{escape(label)}: run [bold]{made['id']}[/bold], {made['items']} items"
            )
        runs.append(
            finish(
                url,
                api_key,
                made["id"],
                gateway_url,
                gateway_key,
                concurrency,
                no_cache,
                as_json,
                print_json=False,
                print_run=False,
            )
        )
    columns = []
    first = runs[0]["id"]
    for n, (label, detail) in enumerate(zip(labels, runs, strict=True)):
        comparison, problem = None, None
        with Client(url, api_key) as c:
            try:
                results = c.eval_results(detail["id"])
            except TrimtabError as exc:
                raise fail(f"run {detail['id']}: {message(exc)}") from None
            if n:
                try:
                    comparison = c.compare_eval_runs(detail["id"], first)
                except TrimtabError as exc:
                    problem = message(exc)
        shown = label if models is not None else f"v{label.removeprefix('v')}"
        columns.append(Column(shown, detail, results, comparison, problem))
    card = scorecard(suite, columns)
    if report_to is not None and fmt is not None:
        write_report(report_to, report.bakeoff(card, fmt), as_json)
    if as_json:
        print(orjson.dumps(card).decode())
    else:
        print(report.bakeoff(card, "md"), end="")
