"""/api/evals: eval runs — start one, record its items' results, read it back, compare two.

The runner (`trimtab eval run`, evals/runner.py) does the calling, through the gateway's
/v1 endpoint like any client; these endpoints keep what it finds. Starting a run and
recording results need a key of role operator or admin; reading, viewer, operator or
admin. A run belongs to the caller's tenant: another tenant's run answers 404 (an admin
sees every tenant's).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api import models as m
from trimtab.api.access import actor, json_response, operator, reader, scoped_tenant
from trimtab.api.errors import change
from trimtab.api.eval_endpoints import (
    ATTEST_EVAL_RUN,
    COMPARE_EVAL_RUNS,
    CREATE_EVAL_RUN,
    EVAL_RUN,
    GET_EVAL_RUN,
    LIST_EVAL_RESULTS,
    LIST_EVAL_RUNS,
    LOOKUP_EVAL_CACHE,
    RECORD_EVAL_RESULTS,
)
from trimtab.api.params import bad_param
from trimtab.auth.keyring import KeyRing
from trimtab.bounds import validation_problems
from trimtab.errors import Conflict, Forbidden, Invalid, NotFound
from trimtab.evals.compare import Comparison, compare_runs
from trimtab.evals.runs import NewRun, Result, Run, RunStore, model_digest
from trimtab.evals.scorers import Judge
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.evals.suites import SuiteDefinition, SuitesError, parse_suites
from trimtab.evals.summary import run_scores, summarize
from trimtab.registry.scope import RouteKey
from trimtab.registry.store import RouteStore
from trimtab.rollouts.attestations import AttestationStore
from trimtab.rollouts.eval_evidence import RunLink
from trimtab.types import Principal, name_problem, new_request_id

_EARLIER = 200  # runs of the suite looked through for the default baseline
_RESULTS = TypeAdapter(m.EvalResultsIn)
_LOOKUP = TypeAdapter(m.EvalCacheLookup)


def _validated(adapter: TypeAdapter[Any], body: dict[str, Any]) -> Any:
    try:
        return adapter.validate_python(body)
    except ValidationError as exc:
        problems = validation_problems(exc, "body")
        first = exc.errors()[0]["loc"]
        raise Invalid(
            "\n".join(problems), code="invalid_parameter", param=str(first[0]) if first else None
        ) from None


def _suite(run: Run) -> SuiteDefinition:
    return parse_suites({"evals": {run.new.suite: run.new.definition}}, run.new.suite)[0]


class EvalsAPI:
    def __init__(
        self,
        runs: RunStore,
        datasets: DatasetStore,
        routes: RouteStore,
        keys: KeyRing,
        models: Collection[str],
    ) -> None:
        self._runs = runs
        self._datasets = datasets
        self._routes = routes
        self._keys = keys
        self._models = models
        self._attestations = AttestationStore(runs.engine)

    def routes(self) -> list[Route]:
        return [
            CREATE_EVAL_RUN.route(self.create),
            LIST_EVAL_RUNS.route(self.list_runs),
            GET_EVAL_RUN.route(self.get_run),
            LIST_EVAL_RESULTS.route(self.list_results),
            RECORD_EVAL_RESULTS.route(self.record),
            LOOKUP_EVAL_CACHE.route(self.cache),
            COMPARE_EVAL_RUNS.route(self.compare),
            ATTEST_EVAL_RUN.route(self.attest),
        ]

    # -- who may, and which run ----------------------------------------------------------

    async def _run(self, principal: Principal, run_id: str | None, param: str = "run") -> Run:
        if not run_id:
            raise bad_param(param, "is required: a run id like run_0123456789abcdef")
        tenant = None if principal.is_admin else principal.tenant
        try:
            found: Run = await run_in_threadpool(self._runs.get, run_id, tenant)
        except NotFound:
            raise NotFound(f"no eval run '{run_id}'", param=param) from None
        return found

    def _item_ids(self, run: Run) -> list[str]:
        key = DatasetKey(run.new.dataset_scope, run.new.dataset)
        return self._datasets.item_ids(key, run.new.dataset_version)

    # -- starting a run ------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "run evals")
        body = await CREATE_EVAL_RUN.json(request)
        name = body.get("suite")
        problem = name_problem("suite", name)
        if problem is not None:
            raise bad_param("suite", problem)
        assert isinstance(name, str)
        source = body.get("source", "<request>")
        if not isinstance(source, str) or not source or len(source) > m.SOURCE_CHARS:
            raise bad_param("source", f"must be a file name of at most {m.SOURCE_CHARS} characters")
        definition = body.get("definition")
        if not isinstance(definition, dict):
            raise bad_param("definition", "is required: the suite, as in an `evals:` section")
        try:
            suite = parse_suites({"evals": {name: definition}}, source)[0]
        except SuitesError as exc:
            raise Invalid(str(exc), code="invalid_suite", param="definition") from None
        new = await run_in_threadpool(self._new_run, principal, suite, body.get("version"))
        run = await change(lambda: self._runs.create(new, actor=actor(request, principal, rid)))
        detail = await run_in_threadpool(self._detail, run)
        return json_response(detail, 201, rid)

    def _new_run(self, principal: Principal, suite: SuiteDefinition, asked: Any) -> NewRun:
        try:
            dataset = self._datasets.resolve(suite.dataset, principal.tenant)
            version = self._datasets.version(dataset, suite.dataset_version)
        except NotFound as exc:
            raise NotFound(f"suite '{suite.name}': {exc}", param="definition.dataset") from None
        for n, spec in enumerate(suite.scorers):
            if isinstance(spec, Judge):
                self._check_judge(principal, suite, n, spec)
        route_scope = route_version = None
        if suite.route is not None:
            row = self._routes.resolve(suite.route, principal.tenant, principal.is_admin)
            if row is None:
                raise NotFound(
                    f"suite '{suite.name}': no route named '{suite.route}'",
                    param="definition.route",
                )
            number = self._version_number(asked, row.stable_version, suite.route)
            key = RouteKey.of(row.tenant, row.name)
            found = self._routes.version(key, number)
            if found is None:
                raise NotFound(
                    f"route '{suite.route}' has no version v{number} "
                    f"(it has v1..v{row.latest_version})",
                    param="version",
                )
            route_scope, route_version, digest = key.scope, number, found.digest
        else:
            assert suite.model is not None
            if asked is not None:
                raise bad_param(
                    "version",
                    f"suite '{suite.name}' runs model '{suite.model}', which has no versions",
                )
            if suite.model not in self._models:
                known = ", ".join(sorted(self._models)) or "none"
                raise NotFound(
                    f"suite '{suite.name}': this gateway configures no model '{suite.model}' "
                    f"(configured: {known})",
                    param="definition.model",
                )
            digest = model_digest(suite.model)
        return NewRun(
            scope=principal.tenant,
            suite=suite.name,
            definition=suite.to_json(),
            dataset_scope=dataset.scope,
            dataset=dataset.name,
            dataset_version=version.number,
            route_scope=route_scope,
            route=suite.route,
            route_version=route_version,
            model=suite.model,
            target_digest=digest,
            items=version.items,
        )

    def _check_judge(
        self, principal: Principal, suite: SuiteDefinition, n: int, spec: Judge
    ) -> None:
        """A judge's route and calibration dataset exist, before any item is called."""
        if self._routes.resolve(spec.judge_route, principal.tenant, principal.is_admin) is None:
            raise NotFound(
                f"suite '{suite.name}': scorer '{spec.name}' is judged by route "
                f"'{spec.judge_route}', which does not exist",
                param=f"definition.scorers.{n}.judge_route",
            )
        if spec.calibration is not None:
            name, _, pinned = spec.calibration.partition("@")
            try:
                found = self._datasets.resolve(name, principal.tenant)
                self._datasets.version(found, int(pinned) if pinned else None)
            except NotFound as exc:
                raise NotFound(
                    f"suite '{suite.name}': scorer '{spec.name}': calibration: {exc}",
                    param=f"definition.scorers.{n}.calibration",
                ) from None

    @staticmethod
    def _version_number(asked: Any, stable: int | None, route: str) -> int:
        if asked is None:
            if stable is None:
                raise bad_param("version", f"route '{route}' has no stable version: name one")
            return stable
        text = str(asked) if isinstance(asked, int | str) and not isinstance(asked, bool) else ""
        digits = text[1:] if text.startswith("v") else text
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 9 or int(digits) < 1:
            raise bad_param("version", f"{asked!r} is not a version like v2 or 2")
        return int(digits)

    def _detail(self, run: Run) -> dict[str, Any]:
        suite = _suite(run)
        items = self._item_ids(run)
        results = self._runs.results(run.id)
        bundle = None
        if run.new.route is not None and run.new.route_version is not None:
            key = RouteKey(run.new.route_scope or "", run.new.route)
            found = self._routes.version(key, run.new.route_version)
            bundle = None if found is None else found.bundle.to_json()
        scorers = [s.name for s in suite.scorers]
        return {
            **run.to_json(),
            "summary": summarize(scorers, items, results),
            "bundle": bundle,
        }

    # -- reading -------------------------------------------------------------------------

    async def list_runs(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read eval runs")
        suite = LIST_EVAL_RUNS.arg(request, "suite")
        tenant = scoped_tenant(principal, LIST_EVAL_RUNS.arg(request, "tenant"))
        limit = LIST_EVAL_RUNS.arg(request, "limit")
        found = await run_in_threadpool(self._runs.list, tenant, suite, limit)
        return json_response({"data": [r.to_json() for r in found]})

    async def get_run(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read eval runs")
        run = await self._run(principal, EVAL_RUN.of(request))
        return json_response(await run_in_threadpool(self._detail, run))

    async def list_results(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read eval runs")
        run = await self._run(principal, EVAL_RUN.of(request))

        def work() -> list[dict[str, Any]]:
            results = self._runs.results(run.id)
            return [results[i].to_json() for i in self._item_ids(run) if i in results]

        return json_response({"run": run.id, "data": await run_in_threadpool(work)})

    # -- recording -----------------------------------------------------------------------

    async def record(self, request: Request) -> Response:
        principal = operator(self._keys, request, "run evals")
        run = await self._run(principal, EVAL_RUN.of(request))
        body = _validated(_RESULTS, await RECORD_EVAL_RESULTS.json(request))
        scorers = {s.name for s in _suite(run).scorers}
        results = [self._result(n, raw, scorers) for n, raw in enumerate(body["results"])]

        def work() -> tuple[int, int]:
            known = set(self._item_ids(run))
            for n, result in enumerate(results):
                if result.item_id not in known:
                    raise bad_param(
                        f"results.{n}.item_id",
                        f"'{result.item_id}' is not an item of "
                        f"{run.new.dataset} v{run.new.dataset_version}",
                    )
            recorded = self._runs.record(run, results)
            return recorded, self._runs.get(run.id, None).done

        recorded, done = await change(work)
        return json_response(
            {"run": run.id, "recorded": recorded, "done": done, "items": run.new.items}
        )

    @staticmethod
    def _result(n: int, raw: dict[str, Any], scorers: set[str]) -> Result:
        where = f"results.{n}"
        error = raw.get("error")
        scores = raw["scores"]
        if error is None:
            if raw.get("output") is None:
                raise bad_param(f"{where}.output", "is required when the item has no error")
            if set(scores) != scorers:
                raise bad_param(
                    f"{where}.scores",
                    f"must score exactly the suite's scorers ({', '.join(sorted(scorers))}); "
                    f"has {', '.join(sorted(scores)) or 'none'}",
                )
        elif scores:
            raise bad_param(f"{where}.scores", "must be empty when the item's call failed")
        for scorer, score in scores.items():
            at = f"{where}.scores.{scorer}"
            if "judge" in score and not isinstance(score["judge"], dict):
                raise bad_param(f"{at}.judge", "must be an object (the judge's answers)")
            if set(score) - {"judge"} == {"error"}:
                if not isinstance(score["error"], str) or not score["error"]:
                    raise bad_param(at, "an error must be a non-empty string")
                continue
            value, passed = score.get("value"), score.get("passed")
            valid = (
                set(score) <= {"value", "passed", "reason", "judge"}
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and 0 <= value <= 1
                and isinstance(passed, bool)
                and isinstance(score.get("reason", ""), str)
            )
            if not valid:
                raise bad_param(
                    at,
                    "must be {value: a number in [0, 1], passed: true|false, reason: text} "
                    "or {error: text}, each with an optional judge: {...}",
                )
        return Result(
            item_id=raw["item_id"],
            request_digest=raw["request_digest"],
            output=raw.get("output"),
            error=error,
            scores=scores,
            latency_ms=raw.get("latency_ms"),
            input_tokens=raw.get("input_tokens"),
            output_tokens=raw.get("output_tokens"),
            cost_usd=raw.get("cost_usd"),
            request_id=raw.get("request_id"),
            cached=bool(raw.get("cached", False)),
        )

    async def cache(self, request: Request) -> Response:
        principal = operator(self._keys, request, "run evals")
        run = await self._run(principal, EVAL_RUN.of(request))
        body = _validated(_LOOKUP, await LOOKUP_EVAL_CACHE.json(request))
        found = await run_in_threadpool(self._runs.cached, run, body["digests"])
        return json_response({"data": [r.to_json() for r in found.values()]})

    # -- comparing -----------------------------------------------------------------------

    def _earlier(self, candidate: Run) -> Run:
        """The newest complete run of the candidate's suite started before it."""
        for run in self._runs.list(candidate.new.scope, candidate.new.suite, _EARLIER):
            earlier = run.created_at <= candidate.created_at and run.id != candidate.id
            if earlier and run.status == "complete":
                return run
        raise NotFound(
            f"no complete run of suite '{candidate.new.suite}' before {candidate.id} to "
            "compare it with: name one with baseline=",
            param="baseline",
        )

    async def _compared(
        self, principal: Principal, candidate: Run, asked: str | None
    ) -> tuple[Run, Comparison]:
        if asked is not None:
            baseline = await self._run(principal, asked, "baseline")
        else:
            baseline = await run_in_threadpool(self._earlier, candidate)
        for label, run in (("baseline", baseline), ("candidate", candidate)):
            if run.status != "complete":
                raise Conflict(
                    f"the {label} run {run.id} is incomplete ({run.done} of {run.new.items} "
                    f"items): resume it with `trimtab eval resume {run.id}` first",
                    code="run_incomplete",
                )

        def work() -> Comparison:
            suite = _suite(candidate)
            scorers = [s.name for s in suite.scorers]
            theirs = set(self._item_ids(baseline))
            items = [i for i in self._item_ids(candidate) if i in theirs]
            base = run_scores(scorers, items, self._runs.results(baseline.id))
            cand = run_scores(scorers, items, self._runs.results(candidate.id))
            try:
                return compare_runs(items, base, cand, suite.gate)
            except ValueError as exc:
                raise Invalid(str(exc), code="incomparable_runs") from None

        return baseline, await run_in_threadpool(work)

    async def compare(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read eval runs")
        candidate = await self._run(principal, COMPARE_EVAL_RUNS.arg(request, "run"))
        baseline, result = await self._compared(
            principal, candidate, COMPARE_EVAL_RUNS.arg(request, "baseline")
        )
        return json_response(
            {"baseline": baseline.id, "candidate": candidate.id, **result.to_json()}
        )

    # -- the version's eval attestation ----------------------------------------------------

    async def attest(self, request: Request) -> Response:
        """The candidate run's gate verdict against its baseline, computed here from the
        stored results, written as its route version's `eval` attestation."""
        rid = new_request_id()
        principal = operator(self._keys, request, "attest versions")
        candidate = await self._run(principal, EVAL_RUN.of(request))
        body = await ATTEST_EVAL_RUN.json(request)
        asked = body.get("baseline")
        if asked is not None and not isinstance(asked, str):
            raise bad_param("baseline", "must be a run id like run_0123456789abcdef")
        new = candidate.new
        if new.route is None or new.route_scope is None or new.route_version is None:
            raise Conflict(
                f"run {candidate.id} ran model '{new.model}', not a route version: only a "
                "route version has attestations",
                code="not_a_route_run",
            )
        if not (principal.owner or principal.key_id):
            raise Forbidden("attestations need a key with an owner")
        baseline, result = await self._compared(principal, candidate, asked)
        if result.outcome == "no_verdict":
            raise Conflict(
                f"run {candidate.id} against {baseline.id} has no verdict ("
                + "; ".join(result.reasons)
                + "): no attestation was written",
                code="no_verdict",
            )
        suite = _suite(candidate)
        link = RunLink(
            candidate.id, new.suite, suite.tags, new.dataset, new.dataset_version,
            new.target_digest, result.outcome,
        )  # fmt: skip
        route = RouteKey(new.route_scope, new.route)
        by = actor(request, principal, rid)
        out = await change(
            lambda: self._attestations.attest_run(
                route, new.route_version or 0, by, link, baseline.id
            )
        )
        return json_response(out, 201, rid)
