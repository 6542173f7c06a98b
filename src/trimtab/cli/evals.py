"""`trimtab eval run | resume | show | list | compare` against a running trimtab.

`run` starts a run on the server (which pins the dataset version and the route version),
then sends each item through the gateway's /v1/chat/completions from here, scores the
answers with the suite's scorers and records every result as soon as it is scored
(evals/runner.py). An interrupted run goes on with `resume RUN`: the items it holds are not
called again. An answer an earlier run of the same target gave to the same request body
is reused, unless `--no-cache`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli import evalbakeoff, evalinit, evalviews
from trimtab.cli.calls import call, fail
from trimtab.cli.evaloptions import (
    Concurrency,
    GatewayKey,
    GatewayUrl,
    Json,
    NoCache,
    ReportPath,
    RunId,
    SuiteFile,
    SuiteName,
)
from trimtab.cli.evalrun import finish
from trimtab.cli.evalsuite import suite_source
from trimtab.cli.evalviews import report_format, write_report
from trimtab.cli.options import DEFAULT_URL, ApiKey, TenantFilter, Url
from trimtab.cli.tables import table, version, when
from trimtab.client.types import EvalRunDetail
from trimtab.evals import report
from trimtab.evals.runner import DEFAULT_CONCURRENCY

evals = typer.Typer(
    help="Run eval suites through the gateway, and read and compare their runs.",
    no_args_is_help=True,
)


@evals.command("run")
def run(
    suite: SuiteName,
    file: SuiteFile = None,
    route_version: Annotated[
        str | None,
        typer.Option("--version", help="The route version to evaluate (default: its stable)."),
    ] = None,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    no_cache: NoCache = False,
    gateway_url: GatewayUrl = None,
    gateway_key: GatewayKey = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Also run the suite on this route version (stable, or a version like 1) "
            "and compare: free from the cache when that version's answers are known.",
        ),
    ] = None,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate",
            help="With --baseline: exit 0 when the gate passes, 1 when it fails, 2 when "
            "something prevented the verdict; a route version's verdict is written as its "
            "eval attestation, linked to the run.",
        ),
    ] = False,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Run a suite: its dataset's items through the gateway, scored, recorded on the server."""
    if gate and baseline is None:
        Console(stderr=True, highlight=False).print(
            "[red]error:[/red] --gate needs --baseline (stable, or a version) to compare with"
        )
        raise typer.Exit(2)
    definition, source = suite_source(file, suite, url, api_key)
    if baseline is not None and "route" not in definition:
        raise _exit_for(
            gate, fail(f"suite '{suite}' runs a model: --baseline compares route versions")
        )

    def one(at: str | None, print_json: bool) -> EvalRunDetail:
        made = call(
            url,
            api_key,
            lambda c: c.create_eval_run(suite, definition, version=at, source=source),
        )
        if not as_json:
            Console(stderr=True, highlight=False).print(
                f"run [bold]{made['id']}[/bold]: {made['items']} items of "
                f"{escape(made['dataset'])} {version(made['dataset_version'])}"
            )
        return finish(
            url,
            api_key,
            made["id"],
            gateway_url,
            gateway_key,
            concurrency,
            no_cache,
            as_json,
            print_json,
        )

    if baseline is None:
        one(route_version, print_json=True)
        return
    try:
        base = one(None if baseline == "stable" else baseline, print_json=False)
        cand = one(route_version, print_json=False)
        result = call(url, api_key, lambda c: c.compare_eval_runs(cand["id"], base["id"]))
    except typer.Exit as exc:
        raise _exit_for(gate, exc) from None
    attestation = None
    if gate and result["outcome"] != "no_verdict":
        # the server computes the verdict again from the stored results and writes it
        try:
            attestation = call(
                url, api_key, lambda c: c.attest_eval_run(cand["id"], baseline=base["id"])
            )
        except typer.Exit as exc:
            raise _exit_for(gate, exc) from None
    if as_json:
        whole: dict[str, Any] = {"run": cand, "baseline": base, "comparison": result}
        if attestation is not None:
            whole["attestation"] = attestation
        print(orjson.dumps(whole).decode())
    else:
        evalviews.print_comparison(result)
        if attestation is not None:
            Console(highlight=False).print(
                f"attested {escape(attestation['route'])} v{attestation['version']}: eval "
                f"{attestation['result']} (run {attestation['run_id']}, suite "
                f"{escape(attestation['suite'])}, {escape(attestation['dataset'])} "
                f"v{attestation['dataset_version']})"
            )
    if gate:
        raise typer.Exit(_EXIT[result["outcome"]])


def _exit_for(gate: bool, exc: typer.Exit) -> typer.Exit:
    """With --gate, an error that prevented the verdict exits 2, not 1."""
    return typer.Exit(2) if gate and exc.exit_code == 1 else exc


@evals.command("resume")
def resume(
    run_id: RunId,
    concurrency: Concurrency = DEFAULT_CONCURRENCY,
    no_cache: NoCache = False,
    gateway_url: GatewayUrl = None,
    gateway_key: GatewayKey = None,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Go on with an interrupted run: only the items it does not hold are called."""
    finish(url, api_key, run_id, gateway_url, gateway_key, concurrency, no_cache, as_json)


@evals.command("show")
def show(
    run_id: RunId,
    items: Annotated[bool, typer.Option("--items", help="Also list each item's result.")] = False,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show a run: its target, dataset, and each scorer's mean and pass rate with intervals."""
    detail = call(url, api_key, lambda c: c.eval_run(run_id))
    results = call(url, api_key, lambda c: c.eval_results(run_id)) if items else None
    if as_json:
        print(orjson.dumps({**detail, "results": results} if items else detail).decode())
        return
    evalviews.print_run(detail)
    if results is None:
        return
    names = [s["scorer"] for s in detail["summary"]["scorers"]]
    shown = table("item", *names, "output / error", "ms")
    for r in results:
        cells = []
        for name in names:
            score = r["scores"].get(name)
            if score is None:
                cells.append("")
            elif "error" in score:
                cells.append("[red]error[/red]")
            else:
                mark = "[green]pass[/green]" if score["passed"] else "[red]fail[/red]"
                cells.append(f"{mark} {score['value']:.2f}")
        said = r["output"] if r["error"] is None else f"error: {r['error']}"
        text = " ".join((said or "").split())
        shown.add_row(
            escape(r["item_id"]),
            *cells,
            escape(text[:80] + ("…" if len(text) > 80 else "")),
            "" if r["latency_ms"] is None else f"{r['latency_ms']:.0f}",
        )
    Console(highlight=False).print(shown)


@evals.command("list")
def list_runs(
    suite: Annotated[str | None, typer.Option("--suite", help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most.")] = 50,
    tenant: TenantFilter = None,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List eval runs, newest first."""
    rows = call(url, api_key, lambda c: c.eval_runs(suite=suite, tenant=tenant, limit=limit))
    if as_json:
        print(orjson.dumps(rows).decode())
        return
    shown = table(
        "run",
        "suite",
        "target",
        "dataset",
        "status",
        "items",
        "failed",
        "created (UTC)",
        right=("items", "failed"),
    )
    for r in rows:
        target = f"{r['route']} {version(r['route_version'])}" if r["route"] else str(r["model"])
        shown.add_row(
            escape(r["id"]),
            escape(r["suite"]),
            escape(target),
            escape(f"{r['dataset']} {version(r['dataset_version'])}"),
            r["status"],
            f"{r['done']}/{r['items']}",
            str(r["errors"]),
            when(r["created_at"]),
        )
    Console(highlight=False).print(shown)


_EXIT = {"pass": 0, "fail": 1, "no_verdict": 2}


@evals.command("compare")
def compare(
    candidate: Annotated[str, typer.Argument(help="The candidate run's id.")],
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="The baseline run's id (default: the newest complete earlier run of the suite).",
        ),
    ] = None,
    gate: Annotated[
        bool,
        typer.Option("--gate", help="Exit 0 when the gate passes, 1 when it fails, 2: no verdict."),
    ] = False,
    report_to: ReportPath = None,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Compare a candidate run with a baseline run, paired by item, and give the verdict."""
    fmt = report_format(report_to)
    result = call(url, api_key, lambda c: c.compare_eval_runs(candidate, baseline))
    if report_to is not None and fmt is not None:
        base = call(url, api_key, lambda c: c.eval_run(result["baseline"]))
        cand = call(url, api_key, lambda c: c.eval_run(result["candidate"]))
        write_report(report_to, report.comparison(result, base, cand, fmt), as_json)
    if as_json:
        print(orjson.dumps(result).decode())
    else:
        evalviews.print_comparison(result)
    if gate:
        raise typer.Exit(_EXIT[result["outcome"]])


evals.command("bakeoff")(evalbakeoff.bakeoff)
evals.command("init")(evalinit.init)


def register(app: typer.Typer) -> None:
    """Add `eval ...` to the `trimtab` command."""
    app.add_typer(evals, name="eval")
