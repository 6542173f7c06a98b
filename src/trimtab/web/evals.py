"""/ui/evals (runs, newest first) and /ui/evals/runs/{id} (its items with scores and
reasons; the comparison with a baseline run, regressions first), as the API reads them."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from trimtab.errors import Invalid, NotFound
from trimtab.evals.compare import compare_runs
from trimtab.evals.runs import Run
from trimtab.evals.store import DatasetKey
from trimtab.evals.suites import parse_suites
from trimtab.evals.summary import run_scores, summarize
from trimtab.web.context import Page

RUNS_PAGE = 100
ITEMS_PAGE = 200
_EARLIER = 50


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
    comparison: dict[str, Any] | None = None
    problem: str | None = None
    baseline = _baseline(page, run, baseline_id)
    if baseline is not None:
        if baseline.status != "complete" or run.status != "complete":
            problem = "both runs must be complete to compare them"
        else:
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
                comparison = {"baseline": baseline.id,
                              **compare_runs(shared, base, cand, suite.gate).to_json()}  # fmt: skip
            except ValueError as exc:
                problem = str(exc)
    regressed = set(comparison["regressions"]) if comparison else set()
    ordered = sorted(items, key=lambda i: i not in regressed)  # regressions first
    shown = [results[i].to_json() for i in ordered[offset : offset + ITEMS_PAGE] if i in results]
    return {
        "run": run.to_json(), "scorers": scorers, "summary": summarize(scorers, items, results),
        "results": shown, "regressed": regressed, "comparison": comparison, "problem": problem,
        "offset": offset, "total": len(items), "page_size": ITEMS_PAGE,
    }  # fmt: skip


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
