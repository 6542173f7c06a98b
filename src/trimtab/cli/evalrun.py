"""An eval run executed from the CLI: the runner over the server's API as its ledger, and the
run finished and printed (`finish`, for `eval run`, `resume` and `bakeoff`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from trimtab.cli import evalviews
from trimtab.cli.calls import call, fail, message
from trimtab.client import AsyncClient, TrimtabError
from trimtab.client.types import EvalRunDetail
from trimtab.evals.datasets import Item
from trimtab.evals.runner import Gateway, Plan, Runner
from trimtab.evals.runner import Progress as RunProgress
from trimtab.evals.runs import Result
from trimtab.evals.scorers import Judge
from trimtab.evals.store import item_from_json
from trimtab.evals.suites import SuitesError, parse_suites
from trimtab.registry.bundle import Bundle

COST_LOOKUPS = 8  # record lookups in flight at once


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


def _plan(detail: EvalRunDetail, items: list[Item]) -> Plan:
    suite = parse_suites({"evals": {detail["suite"]: detail["definition"]}}, detail["suite"])[0]
    bundle = Bundle.from_json(detail["bundle"]) if detail["bundle"] is not None else None
    return Plan(detail["id"], suite, items, bundle=bundle, model=detail["model"])


async def execute(
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


def finish(
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
