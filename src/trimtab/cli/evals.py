"""`trimtab eval run | resume | show | list | compare` against a running trimtab.

`run` starts a run on the server (which pins the dataset version and the route version),
then sends each item through the gateway's /v1/chat/completions from here, scores the
answers with the suite's scorers and records every result as soon as it is scored
(evals/runner.py). An interrupted run goes on with `resume RUN`: the items it holds are not
called again. An answer an earlier run of the same target gave to the same request body
is reused, unless `--no-cache`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich.console import Console
from rich.markup import escape

from trimtab.cli import evalinit, evalviews
from trimtab.cli.calls import call, fail, message
from trimtab.cli.evalrun import execute
from trimtab.cli.options import DEFAULT_URL, ApiKey, TenantFilter, Url
from trimtab.cli.tables import table, version, when
from trimtab.client import Client, TrimtabError
from trimtab.client.types import EvalRunDetail
from trimtab.evals import report
from trimtab.evals.bakeoff import Column, scorecard
from trimtab.evals.runner import DEFAULT_CONCURRENCY, Gateway
from trimtab.evals.suites import SuitesError, parse_suites

evals = typer.Typer(
    help="Run eval suites through the gateway, and read and compare their runs.",
    no_args_is_help=True,
)

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


def _suite_source(
    file: Path | None, suite: str, url: str, api_key: str | None
) -> tuple[dict[str, Any], str]:
    """The suite's definition and where it came from: `file`'s `evals:` section, else the
    suite applied on the server (`trimtab apply`), the caller's tenant's or the shared one."""
    if file is not None:
        return _suite_definition(file, suite), str(file)
    applied = call(url, api_key, lambda c: c.eval_suite(suite))
    return applied["definition"], f"applied suite {suite}"


def _suite_definition(file: Path, suite: str) -> dict[str, Any]:
    """The suite's definition from a file's `evals:` section, checked here first so a
    mistake names the file and the key before anything is started."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise fail(f"{file}: not a YAML file: {exc}") from None
    try:
        suites = parse_suites(data, str(file))
    except SuitesError as exc:
        raise fail(f"{file}: {len(exc.problems)} problem(s)\n" + str(exc)) from None
    raw = data["evals"]
    if suite not in raw:
        known = ", ".join(s.name for s in suites)
        raise fail(f"{file}: no suite '{suite}' in its evals: section (it has: {known})")
    definition: dict[str, Any] = raw[suite]
    return definition


def _finish(
    url: str,
    api_key: str | None,
    run_id: str,
    gateway_url: str | None,
    gateway_key: str | None,
    concurrency: int,
    no_cache: bool,
    as_json: bool,
    print_json: bool = True,
    print_run: bool = True,
) -> EvalRunDetail:
    """Run what `run_id` lacks, print the run, and return it; an incomplete run ends the
    command (exit 1) naming `resume`."""
    gateway = Gateway(gateway_url or url, gateway_key or api_key)
    err = Console(stderr=True, highlight=False)
    try:
        progress, calibration = asyncio.run(
            execute(url, api_key, run_id, gateway, concurrency, not no_cache, not as_json)
        )
    except TrimtabError as exc:
        raise fail(
            f"run {run_id}: {message(exc)}; what was recorded is kept: "
            f"`trimtab eval resume {run_id}` goes on"
        ) from None
    except KeyboardInterrupt:
        err.print(f"interrupted: `trimtab eval resume {run_id}` goes on where this stopped")
        raise typer.Exit(130) from None
    detail = call(url, api_key, lambda c: c.eval_run(run_id))
    if calibration:
        detail = {**detail, "calibration": calibration}  # type: ignore[typeddict-unknown-key]
    if as_json:
        if print_json:
            print(orjson.dumps(detail).decode())
    else:
        err.print(
            f"{progress.called} called, {progress.cached} from the cache, "
            f"{progress.skipped} already in the run; {progress.errors} failed"
        )
        if print_run:
            evalviews.print_run(detail)
            evalviews.print_calibration(calibration)
    if detail["status"] != "complete":
        raise fail(
            f"run {run_id} is incomplete ({detail['done']} of {detail['items']} items): "
            f"`trimtab eval resume {run_id}` goes on"
        )
    return detail


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
    definition, source = _suite_source(file, suite, url, api_key)
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
        return _finish(
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
    _finish(url, api_key, run_id, gateway_url, gateway_key, concurrency, no_cache, as_json)


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
    fmt = _report_format(report_to)
    result = call(url, api_key, lambda c: c.compare_eval_runs(candidate, baseline))
    if report_to is not None and fmt is not None:
        base = call(url, api_key, lambda c: c.eval_run(result["baseline"]))
        cand = call(url, api_key, lambda c: c.eval_run(result["candidate"]))
        _write_report(report_to, report.comparison(result, base, cand, fmt), as_json)
    if as_json:
        print(orjson.dumps(result).decode())
    else:
        evalviews.print_comparison(result)
    if gate:
        raise typer.Exit(_EXIT[result["outcome"]])


def _report_format(path: Path | None) -> report.Format | None:
    if path is None:
        return None
    try:
        return report.format_of(path)
    except ValueError as exc:
        raise fail(str(exc)) from None


def _write_report(path: Path, text: str, quiet: bool) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{path}: cannot write the report: {exc.strerror}") from None
    if not quiet:
        Console(stderr=True, highlight=False).print(f"report written to {escape(str(path))}")


def _listed(option: str, text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise fail(f"{option}: '{twice[0]}' is named twice")
    if len(names) < 2:
        raise fail(f"{option}: a bake-off compares at least two, comma-separated: a,b")
    return names


@evals.command("bakeoff")
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
    fmt = _report_format(report_to)
    definition, source = _suite_source(file, suite, url, api_key)
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
            _finish(
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
        _write_report(report_to, report.bakeoff(card, fmt), as_json)
    if as_json:
        print(orjson.dumps(card).decode())
    else:
        print(report.bakeoff(card, "md"), end="")


evals.command("init")(evalinit.init)


def register(app: typer.Typer) -> None:
    """Add `eval ...` to the `trimtab` command."""
    app.add_typer(evals, name="eval")
