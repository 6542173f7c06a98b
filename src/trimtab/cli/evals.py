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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from trimtab.cli.calls import call, fail, message
from trimtab.cli.options import DEFAULT_URL, ApiKey, TenantFilter, Url
from trimtab.cli.tables import table, version, when
from trimtab.client import AsyncClient, Client, TrimtabError
from trimtab.client.types import EvalRunDetail
from trimtab.evals import report
from trimtab.evals.bakeoff import Column, scorecard
from trimtab.evals.datasets import Item
from trimtab.evals.runner import DEFAULT_CONCURRENCY, Gateway, Plan, Runner
from trimtab.evals.runner import Progress as RunProgress
from trimtab.evals.runs import Result
from trimtab.evals.scorers import Judge
from trimtab.evals.store import item_from_json
from trimtab.evals.suites import SuitesError, parse_suites
from trimtab.registry.bundle import Bundle

COST_LOOKUPS = 8  # record lookups in flight at once

evals = typer.Typer(
    help="Run eval suites through the gateway, and read and compare their runs.",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(help="The run's id (run_...).")]
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


class ApiLedger:
    """The runner's ledger: the run's results on the server, through its API."""

    def __init__(self, client: AsyncClient, run_id: str) -> None:
        self._client = client
        self._run = run_id

    async def done(self) -> set[str]:
        return {r["item_id"] for r in await self._client.eval_results(self._run)}

    async def cached(self, digests: Sequence[str]) -> Mapping[str, Result]:
        hits = await self._client.eval_cache(self._run, list(digests))
        return {h["request_digest"]: Result(**h) for h in hits}

    async def record(self, results: Sequence[Result]) -> None:
        await self._client.record_eval_results(self._run, [r.to_json() for r in results])

    async def costs(self, request_ids: Sequence[str]) -> Mapping[str, float | None]:
        """From the gateway's records (GET /api/requests/ID), COST_LOOKUPS at a time."""
        gate = asyncio.Semaphore(COST_LOOKUPS)

        async def one(rid: str) -> tuple[str, float | None] | None:
            async with gate:
                try:
                    record = await self._client.request(rid)
                except TrimtabError as exc:
                    if exc.status == 404:
                        return None  # not recorded yet
                    raise
            cost = record.get("cost_usd")
            return rid, float(cost) if isinstance(cost, int | float) else None

        found = await asyncio.gather(*(one(rid) for rid in request_ids))
        return dict(f for f in found if f is not None)


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


def _plan(detail: EvalRunDetail, items: list[Item]) -> Plan:
    suite = parse_suites({"evals": {detail["suite"]: detail["definition"]}}, detail["suite"])[0]
    bundle = Bundle.from_json(detail["bundle"]) if detail["bundle"] is not None else None
    return Plan(detail["id"], suite, items, bundle=bundle, model=detail["model"])


async def _execute(
    url: str,
    api_key: str | None,
    run_id: str,
    gateway: Gateway,
    concurrency: int,
    cache: bool,
    show_progress: bool,
) -> tuple[RunProgress, dict[str, Any]]:
    """The run's progress, and each judge's calibration against people (if it has one)."""
    async with AsyncClient(url, api_key) as client:
        detail = await client.eval_run(run_id)
        tenant = detail["dataset_tenant"] or ""
        contents = await client.dataset_version(
            detail["dataset"], detail["dataset_version"], tenant=tenant
        )
        items = [item_from_json(dict(raw)) for raw in contents["data"]]
        try:
            plan = _plan(detail, items)
            # the suite's `python` scorers import their functions here, in this process
            runner_args: dict[str, Any] = {"concurrency": concurrency, "cache": cache}
            if not show_progress:
                runner = Runner(plan, gateway, ApiLedger(client, run_id), **runner_args)
                return await runner.run(), await _calibrate(client, runner)
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed}/{task.total} · {task.fields[errors]} errors"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            ) as bar:
                task = bar.add_task(run_id, total=len(items), errors=0)

                def show(p: RunProgress) -> None:
                    bar.update(task, completed=p.done, errors=p.errors)

                runner = Runner(
                    plan, gateway, ApiLedger(client, run_id), on_progress=show, **runner_args
                )
                progress = await runner.run()
            return progress, await _calibrate(client, runner)
        except (SuitesError, ValueError) as exc:
            raise fail(f"run {run_id}: the suite cannot be run here: {exc}") from None


async def _calibrate(client: AsyncClient, runner: Runner) -> dict[str, Any]:
    """Each judge with a `calibration:` dataset, judged on it (the newest version unless
    pinned) against the people's verdicts."""
    sets: dict[str, list[Item]] = {}
    named: dict[str, str] = {}
    for spec in runner.plan.suite.scorers:
        if not isinstance(spec, Judge) or spec.calibration is None:
            continue
        name, _, pinned = spec.calibration.partition("@")
        contents = await client.dataset_version(name, pinned or "latest")
        sets[spec.name] = [item_from_json(dict(raw)) for raw in contents["data"]]
        named[spec.name] = f"{name} v{contents['version']}"
    if not sets:
        return {}
    found = await runner.calibrate(sets)
    return {scorer: {"dataset": named[scorer], **found[scorer]} for scorer in found}


def _print_calibration(calibration: Mapping[str, Any]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    for scorer, c in calibration.items():
        kappa = "n/a" if c["kappa"] is None else f"{c['kappa']:.2f}"
        agree = "n/a" if c["agreement"] is None else f"{c['agreement']:.0%}"
        rates = ""
        if c["items"]:
            rates = (
                f"; passes: judge {c['judge_pass_rate']:.0%}, people {c['people_pass_rate']:.0%}"
            )
        out.print(
            f"judge {escape(scorer)} against people on {escape(c['dataset'])} "
            f"({c['items']} items): Cohen's kappa {kappa}, agreement {agree}{rates}"
        )
        if c["disagreements"]:
            out.print(
                "  they disagree on: " + ", ".join(escape(i) for i in c["disagreements"][:20])
            )
        for problem in c["problems"][:5]:
            out.print(f"  [yellow]not used[/yellow]: {escape(problem)}")


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
            _execute(url, api_key, run_id, gateway, concurrency, not no_cache, not as_json)
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
            _print_run(detail)
            _print_calibration(calibration)
    if detail["status"] != "complete":
        raise fail(
            f"run {run_id} is incomplete ({detail['done']} of {detail['items']} items): "
            f"`trimtab eval resume {run_id}` goes on"
        )
    return detail


def _interval(pair: list[float] | None, percent: bool) -> str:
    if pair is None:
        return ""
    low, high = pair
    return f"{low:.1%} to {high:.1%}" if percent else f"{low:.3f} to {high:.3f}"


def _print_run(detail: EvalRunDetail) -> None:
    out = Console(highlight=False, soft_wrap=True)
    target = (
        f"route {escape(detail['route'] or '')} {version(detail['route_version'])}"
        if detail["route"] is not None
        else f"model {escape(detail['model'] or '')}"
    )
    out.print(
        f"[bold]{escape(detail['id'])}[/bold] suite [bold]{escape(detail['suite'])}[/bold]: "
        f"{target}, dataset {escape(detail['dataset'])} {version(detail['dataset_version'])}; "
        f"{detail['status']}: {detail['done']}/{detail['items']} items, "
        f"{detail['errors']} failed, {detail['cached']} from the cache; "
        f"{when(detail['created_at'])}"
    )
    summary = detail["summary"]
    shown = table(
        "scorer",
        "scored",
        "errors",
        "mean",
        "95% interval",
        "pass rate",
        "95% interval ",
        right=("scored", "errors", "mean", "pass rate"),
    )
    for s in summary["scorers"]:
        mean, rate = s["mean"], s["pass_rate"]
        shown.add_row(
            escape(s["scorer"]),
            str(s["scored"]),
            str(s["errors"]),
            "" if mean is None else f"{mean:.3f}",
            _interval(s["mean_interval"], percent=False),
            "" if rate is None else f"{rate:.1%}",
            _interval(s["pass_rate_interval"], percent=True),
        )
    out.print(shown)
    out.print("intervals: mean, BCa bootstrap; pass rate, Wilson score")
    for s in summary["scorers"]:
        judged = s.get("judge_consistency")
        if judged:
            out.print(
                f"judge {escape(s['scorer'])}: {judged['repeats']} repeats of "
                f"{judged['items']} items, mean agreement {judged['mean_agreement']:.2f} "
                f"({judged['unanimous_share']:.0%} unanimous), spread mean "
                f"{judged['mean_spread']:.3f}, largest {judged['max_spread']:.3f}"
            )
    latency = summary["latency_ms"]
    if latency.get("p50") is not None:
        out.print(
            f"latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms; tokens "
            f"{summary['input_tokens']} in, {summary['output_tokens']} out"
        )
    failed = summary["failed_items"]
    if failed:
        shown_ids = ", ".join(escape(i) for i in failed[:10])
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        out.print(f"[red]failed items[/red]: {shown_ids}{more}")


@evals.command("run")
def run(
    suite: Annotated[str, typer.Argument(help="The suite's name in the file's evals: section.")],
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The YAML file with the evals: section.")
    ],
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
            "something prevented the verdict.",
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
    definition = _suite_definition(file, suite)
    if baseline is not None and "route" not in definition:
        raise _exit_for(
            gate, fail(f"suite '{suite}' runs a model: --baseline compares route versions")
        )

    def one(at: str | None, print_json: bool) -> EvalRunDetail:
        made = call(
            url,
            api_key,
            lambda c: c.create_eval_run(suite, definition, version=at, source=str(file)),
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
    if as_json:
        print(orjson.dumps({"run": cand, "baseline": base, "comparison": result}).decode())
    else:
        _print_comparison(result)
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
    _print_run(detail)
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
        _print_comparison(result)
    if gate:
        raise typer.Exit(_EXIT[result["outcome"]])


def _number(value: Any, spec: str) -> str:
    """A statistic, or "n/a" where there was none to compute (no paired items)."""
    return "n/a" if value is None else format(value, spec)


def _print_comparison(result: Mapping[str, Any]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    colour = {"pass": "green", "fail": "red", "no_verdict": "yellow"}[result["outcome"]]
    word = result["outcome"].replace("_", " ")
    errors = result["errors"]
    out.print(
        f"{escape(result['candidate'])} against {escape(result['baseline'])}: "
        f"[{colour}]{word}[/{colour}] ({result['items']} items; failed calls: "
        f"{errors['baseline']} baseline, {errors['candidate']} candidate)"
    )
    shown = table(
        "scorer",
        "verdict",
        "n",
        "baseline",
        "candidate",
        "difference (95% interval)",
        "p (Holm)",
        "detectable drop",
        "pass→fail / fail→pass",
        right=("n", "baseline", "candidate", "p (Holm)", "detectable drop"),
    )
    for s in result["scorers"]:
        verdict = "too little data" if s["verdict"] == "too_little_data" else s["verdict"]
        ends = " to ".join(_number(end, "+.3f") for end in s["interval"])
        shown.add_row(
            escape(s["scorer"]),
            verdict.replace("_", " "),
            str(s["n"]),
            _number(s["baseline_mean"], ".3f"),
            _number(s["candidate_mean"], ".3f"),
            f"{_number(s['difference'], '+.3f')} ({ends})",
            _number(s["p_adjusted"], ".3g"),
            _number(s["detectable_drop"], ".3f"),
            f"{len(s['pass_to_fail'])} / {len(s['fail_to_pass'])}",
        )
    out.print(shown)
    methods = sorted({s["method"] for s in result["scorers"]})
    for method in methods:
        out.print(f"method: {escape(method)}")
    for reason in result["reasons"]:
        out.print(f"- {escape(reason)}")
    if result["regressions"]:
        listed = ", ".join(escape(i) for i in result["regressions"][:20])
        more = len(result["regressions"]) - 20
        out.print(
            f"[red]pass → fail[/red] (read these first): {listed}"
            + (f" and {more} more" if more > 0 else "")
        )


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
    suite: Annotated[str, typer.Argument(help="The suite's name in the file's evals: section.")],
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The YAML file with the evals: section.")
    ],
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
    definition = _suite_definition(file, suite)
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
            return c.create_eval_run(suite, d, version=v, source=str(file))

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


def register(app: typer.Typer) -> None:
    """Add `eval ...` to the `trimtab` command."""
    app.add_typer(evals, name="eval")
