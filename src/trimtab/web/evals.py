"""/ui/evals (runs, newest first), /ui/evals/runs/{id} (its items with scores and
reasons; the comparison with a baseline run, regressions first), as the API reads them,
and /ui/evals/bakeoff?run=A&run=B (the bake-off scorecard of runs of one suite, each
column against the first: evals/bakeoff.scorecard, as `trimtab eval bakeoff` prints)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from trimtab.errors import Invalid, NotFound
from trimtab.evals.bakeoff import Column, scorecard
from trimtab.evals.compare import compare_runs
from trimtab.evals.runs import Result, Run
from trimtab.evals.store import DatasetKey
from trimtab.evals.suites import parse_suites
from trimtab.evals.summary import run_scores, summarize
from trimtab.web.context import Page

RUNS_PAGE = 100
ITEMS_PAGE = 200
_EARLIER = 50
BAKEOFF_MAX = 8  # columns


async def index(page: Page) -> Response:
    tenant = page.viewer.tenant(page.param("tenant"))
    suite = page.param("suite")
    runs = await asyncio.to_thread(page.deps.runs.list, tenant, suite, RUNS_PAGE)
    return page.render("evals.html.j2", runs=[r.to_json() for r in runs], suite=suite)


def _detail(page: Page, run: Run, baseline_id: str | None, offset: int) -> dict[str, Any]:
    """Blocking: the run's summary, a page of its items, and the comparison."""
    deps = page.deps
    suite = parse_suites({"evals": {run.new.suite: run.new.definition}}, run.new.suite)[0]
    scorers = [s.name for s in suite.scorers]
    items = deps.datasets.item_ids(
        DatasetKey(run.new.dataset_scope, run.new.dataset), run.new.dataset_version
    )
    results = deps.runs.results(run.id)
    baseline = _baseline(page, run, baseline_id)
    comparison, problem = (None, None)
    if baseline is not None:
        comparison, problem = _compare(page, run, items, results, baseline)
    regressed = set(comparison["regressions"]) if comparison else set()
    ordered = sorted(items, key=lambda i: i not in regressed)  # regressions first
    shown = [results[i].to_json() for i in ordered[offset : offset + ITEMS_PAGE] if i in results]
    return {
        "run": run.to_json(), "scorers": scorers, "summary": summarize(scorers, items, results),
        "results": shown, "regressed": regressed, "comparison": comparison, "problem": problem,
        "offset": offset, "total": len(items), "page_size": ITEMS_PAGE,
    }  # fmt: skip


def _compare(
    page: Page, run: Run, items: list[str], results: dict[str, Result], baseline: Run
) -> tuple[dict[str, Any] | None, str | None]:
    """Blocking: `run` against `baseline` over the items both hold (compare_runs, as the
    API's comparison), or why there is none."""
    if baseline.status != "complete" or run.status != "complete":
        return None, "both runs must be complete to compare them"
    deps = page.deps
    suite = parse_suites({"evals": {run.new.suite: run.new.definition}}, run.new.suite)[0]
    scorers = [s.name for s in suite.scorers]
    base_items = set(
        deps.datasets.item_ids(
            DatasetKey(baseline.new.dataset_scope, baseline.new.dataset),
            baseline.new.dataset_version,
        )
    )
    shared = [i for i in items if i in base_items]
    base = run_scores(scorers, shared, deps.runs.results(baseline.id))
    cand = run_scores(scorers, shared, results)
    try:
        found = compare_runs(shared, base, cand, suite.gate).to_json()
    except ValueError as exc:
        return None, str(exc)
    return {"baseline": baseline.id, **found}, None


def _baseline(page: Page, run: Run, asked: str | None) -> Run | None:
    tenant = None if page.viewer.is_admin else page.viewer.principal.tenant
    if asked is not None:
        try:
            return page.deps.runs.get(asked, tenant)
        except NotFound:
            raise NotFound(f"no eval run '{asked}'", param="baseline") from None
    for other in page.deps.runs.list(run.new.scope, run.new.suite, _EARLIER):
        earlier = other.created_at <= run.created_at and other.id != run.id
        if earlier and other.status == "complete":
            return other
    return None


async def run(page: Page) -> Response:
    run_id = page.request.path_params["run_id"]
    tenant = None if page.viewer.is_admin else page.viewer.principal.tenant
    try:
        found = await asyncio.to_thread(page.deps.runs.get, run_id, tenant)
    except NotFound:
        raise NotFound(f"no eval run '{run_id}'") from None
    offset_text = page.param("offset") or "0"
    if not offset_text.isdigit():
        raise Invalid("'offset' must be a whole number", param="offset")
    data = await asyncio.to_thread(_detail, page, found, page.param("baseline"), int(offset_text))
    return page.render("run.html.j2", **data)


def _scorecard(page: Page, runs: list[Run]) -> dict[str, Any]:
    """Blocking: the bake-off scorecard of `runs`, each column against the first."""
    deps = page.deps
    columns = []
    for n, run in enumerate(runs):
        suite = parse_suites({"evals": {run.new.suite: run.new.definition}}, run.new.suite)[0]
        scorers = [s.name for s in suite.scorers]
        items = deps.datasets.item_ids(
            DatasetKey(run.new.dataset_scope, run.new.dataset), run.new.dataset_version
        )
        results = deps.runs.results(run.id)
        detail = {**run.to_json(), "summary": summarize(scorers, items, results)}
        comparison, problem = _compare(page, run, items, results, runs[0]) if n else (None, None)
        label = run.new.model or f"v{run.new.route_version}"
        rows = [r.to_json() for r in results.values()]
        columns.append(Column(label, detail, rows, comparison, problem))
    return scorecard(runs[0].new.suite, columns)


async def bakeoff(page: Page) -> Response:
    asked = [i.strip() for i in page.request.query_params.getlist("run") if i.strip()]
    if len(asked) == 1 or len(asked) > BAKEOFF_MAX:
        raise Invalid(f"a bake-off compares 2 to {BAKEOFF_MAX} runs", param="run")
    tenant = None if page.viewer.is_admin else page.viewer.principal.tenant
    runs = []
    for run_id in dict.fromkeys(asked):
        try:
            runs.append(await asyncio.to_thread(page.deps.runs.get, run_id, tenant))
        except NotFound:
            raise NotFound(f"no eval run '{run_id}'", param="run") from None
    if len({r.new.suite for r in runs}) > 1:
        raise Invalid("a bake-off compares runs of one suite", param="run")
    card = await asyncio.to_thread(_scorecard, page, runs) if len(runs) >= 2 else None
    return page.render("bakeoff.html.j2", card=card, asked=asked)
