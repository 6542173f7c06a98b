"""The dataset and eval calls of `Client` and `AsyncClient` (/api/datasets, /api/evals):
datasets and their versions, eval runs and their results, applied suites. Each client class
takes the methods of its mixin here; the requests are built once in `_calls`."""

from __future__ import annotations

from typing import Any, Literal

from trimtab.client import _calls as calls
from trimtab.client._core import AsyncRuns, Runs
from trimtab.client.types import (
    AppliedSuite,
    DatasetContents,
    DatasetDiff,
    DatasetVersion,
    EvalComparison,
    EvalRecorded,
    EvalResult,
    EvalRun,
    EvalRunDetail,
    EvalSuite,
    PushedDataset,
)


class EvalMethods:
    """`Client`'s dataset and eval calls."""

    def push_dataset(
        self: Runs,
        name: str,
        content: str,
        message: str,
        *,
        format: Literal["jsonl", "csv"] = "jsonl",
        source: str | None = None,
        tenant: str | None = None,
    ) -> PushedDataset:
        """Push a JSONL or CSV file's text as the dataset's next version (`created` False:
        an existing version holds these items). `tenant`: an admin's choice, "" shared."""
        return self._run(calls.push_dataset(name, content, message, format, source, tenant))

    def datasets(self: Runs, *, tenant: str | None = None) -> list[DatasetVersion]:
        """Each dataset's newest version that this key may see."""
        return self._run(calls.datasets(tenant))

    def dataset_versions(
        self: Runs, name: str, *, tenant: str | None = None
    ) -> list[DatasetVersion]:
        """A dataset's versions, oldest first."""
        return self._run(calls.dataset_versions(name, tenant))

    def dataset_version(
        self: Runs, name: str, version: int | str = "latest", *, tenant: str | None = None
    ) -> DatasetContents:
        """One version (`3`, `"v3"` or `"latest"`) with its items in `data`."""
        return self._run(calls.dataset_version(name, version, tenant))

    def dataset_diff(
        self: Runs,
        name: str,
        before: int | str | None = None,
        after: int | str | None = None,
        *,
        tenant: str | None = None,
    ) -> DatasetDiff:
        """Item ids added, removed and changed; `after` defaults to the newest version,
        `before` to the one before it."""
        return self._run(calls.dataset_diff(name, before, after, tenant))

    def dataset_from_requests(
        self: Runs,
        name: str,
        route: str,
        *,
        version: str | None = None,
        negative_feedback: bool = False,
        errors: bool = False,
        since: str | None = None,
        limit: int | None = None,
        message: str | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Recorded requests of `route` into the dataset's next version, deduplicated by
        input; the counts read, added, duplicated and unusable (no readable body)."""
        return self._run(
            calls.dataset_from_requests(
                name,
                route,
                version=version,
                negative_feedback=negative_feedback,
                errors=errors,
                since=since,
                limit=limit,
                message=message,
                tenant=tenant,
            )
        )

    def create_eval_run(
        self: Runs,
        suite: str,
        definition: dict[str, Any],
        *,
        version: int | str | None = None,
        source: str | None = None,
    ) -> EvalRunDetail:
        """Start a run of `suite` (its definition as in an `evals:` section); `version`:
        the route version (default: its stable one)."""
        return self._run(calls.create_eval_run(suite, definition, version, source))

    def eval_runs(
        self: Runs, *, suite: str | None = None, tenant: str | None = None, limit: int | None = None
    ) -> list[EvalRun]:
        """Eval runs, newest first."""
        return self._run(calls.eval_runs(suite, tenant, limit))

    def eval_run(self: Runs, run_id: str) -> EvalRunDetail:
        """A run with each scorer's mean and pass rate and their intervals."""
        return self._run(calls.eval_run(run_id))

    def eval_results(self: Runs, run_id: str) -> list[EvalResult]:
        """A run's per-item results, in the dataset's order."""
        return self._run(calls.eval_results(run_id))

    def record_eval_results(self: Runs, run_id: str, results: list[dict[str, Any]]) -> EvalRecorded:
        """Record items' results (an item the run holds already is left as it was)."""
        return self._run(calls.record_eval_results(run_id, results))

    def eval_cache(self: Runs, run_id: str, digests: list[str]) -> list[EvalResult]:
        """Earlier answers from the run's target to these request bodies."""
        return self._run(calls.eval_cache(run_id, digests))

    def compare_eval_runs(
        self: Runs, candidate: str, baseline: str | None = None
    ) -> EvalComparison:
        """The paired comparison of two complete runs, and the gate's verdict; `baseline`
        defaults to the newest complete earlier run of the candidate's suite."""
        return self._run(calls.compare_eval_runs(baseline, candidate))

    def attest_eval_run(self: Runs, run_id: str, *, baseline: str | None = None) -> dict[str, Any]:
        """Write the run's route version's `eval` attestation from its gate verdict against
        `baseline` (default: the newest complete earlier run), linked to the run."""
        return self._run(calls.attest_eval_run(run_id, baseline))

    def apply_eval_suites(
        self: Runs, yaml: str, message: str, *, source: str | None = None
    ) -> list[AppliedSuite]:
        """Apply the `evals:` section of a file's text; each changed suite is replaced."""
        return self._run(calls.apply_eval_suites(yaml, message, source))

    def eval_suites(
        self: Runs, *, route: str | None = None, tenant: str | None = None
    ) -> list[EvalSuite]:
        """The applied suites (of one route with `route`)."""
        return self._run(calls.eval_suites(route, tenant))

    def eval_suite(self: Runs, name: str, *, tenant: str | None = None) -> EvalSuite:
        """One applied suite: the caller's tenant's, else the shared one."""
        return self._run(calls.eval_suite(name, tenant))


class AsyncEvalMethods:
    """`AsyncClient`'s dataset and eval calls."""

    async def push_dataset(
        self: AsyncRuns,
        name: str,
        content: str,
        message: str,
        *,
        format: Literal["jsonl", "csv"] = "jsonl",
        source: str | None = None,
        tenant: str | None = None,
    ) -> PushedDataset:
        """Push a JSONL or CSV file's text as the dataset's next version (`created` False:
        an existing version holds these items). `tenant`: an admin's choice, "" shared."""
        return await self._run(calls.push_dataset(name, content, message, format, source, tenant))

    async def datasets(self: AsyncRuns, *, tenant: str | None = None) -> list[DatasetVersion]:
        """Each dataset's newest version that this key may see."""
        return await self._run(calls.datasets(tenant))

    async def dataset_versions(
        self: AsyncRuns, name: str, *, tenant: str | None = None
    ) -> list[DatasetVersion]:
        """A dataset's versions, oldest first."""
        return await self._run(calls.dataset_versions(name, tenant))

    async def dataset_version(
        self: AsyncRuns, name: str, version: int | str = "latest", *, tenant: str | None = None
    ) -> DatasetContents:
        """One version (`3`, `"v3"` or `"latest"`) with its items in `data`."""
        return await self._run(calls.dataset_version(name, version, tenant))

    async def dataset_diff(
        self: AsyncRuns,
        name: str,
        before: int | str | None = None,
        after: int | str | None = None,
        *,
        tenant: str | None = None,
    ) -> DatasetDiff:
        """Item ids added, removed and changed; `after` defaults to the newest version,
        `before` to the one before it."""
        return await self._run(calls.dataset_diff(name, before, after, tenant))

    async def dataset_from_requests(
        self: AsyncRuns,
        name: str,
        route: str,
        *,
        version: str | None = None,
        negative_feedback: bool = False,
        errors: bool = False,
        since: str | None = None,
        limit: int | None = None,
        message: str | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Recorded requests of `route` into the dataset's next version, deduplicated by
        input; the counts read, added, duplicated and unusable (no readable body)."""
        return await self._run(
            calls.dataset_from_requests(
                name,
                route,
                version=version,
                negative_feedback=negative_feedback,
                errors=errors,
                since=since,
                limit=limit,
                message=message,
                tenant=tenant,
            )
        )

    async def create_eval_run(
        self: AsyncRuns,
        suite: str,
        definition: dict[str, Any],
        *,
        version: int | str | None = None,
        source: str | None = None,
    ) -> EvalRunDetail:
        """Start a run of `suite` (its definition as in an `evals:` section); `version`:
        the route version (default: its stable one)."""
        return await self._run(calls.create_eval_run(suite, definition, version, source))

    async def eval_runs(
        self: AsyncRuns,
        *,
        suite: str | None = None,
        tenant: str | None = None,
        limit: int | None = None,
    ) -> list[EvalRun]:
        """Eval runs, newest first."""
        return await self._run(calls.eval_runs(suite, tenant, limit))

    async def eval_run(self: AsyncRuns, run_id: str) -> EvalRunDetail:
        """A run with each scorer's mean and pass rate and their intervals."""
        return await self._run(calls.eval_run(run_id))

    async def eval_results(self: AsyncRuns, run_id: str) -> list[EvalResult]:
        """A run's per-item results, in the dataset's order."""
        return await self._run(calls.eval_results(run_id))

    async def record_eval_results(
        self: AsyncRuns, run_id: str, results: list[dict[str, Any]]
    ) -> EvalRecorded:
        """Record items' results (an item the run holds already is left as it was)."""
        return await self._run(calls.record_eval_results(run_id, results))

    async def eval_cache(self: AsyncRuns, run_id: str, digests: list[str]) -> list[EvalResult]:
        """Earlier answers from the run's target to these request bodies."""
        return await self._run(calls.eval_cache(run_id, digests))

    async def compare_eval_runs(
        self: AsyncRuns, candidate: str, baseline: str | None = None
    ) -> EvalComparison:
        """The paired comparison of two complete runs, and the gate's verdict; `baseline`
        defaults to the newest complete earlier run of the candidate's suite."""
        return await self._run(calls.compare_eval_runs(baseline, candidate))

    async def attest_eval_run(
        self: AsyncRuns, run_id: str, *, baseline: str | None = None
    ) -> dict[str, Any]:
        """Write the run's route version's `eval` attestation from its gate verdict against
        `baseline` (default: the newest complete earlier run), linked to the run."""
        return await self._run(calls.attest_eval_run(run_id, baseline))

    async def apply_eval_suites(
        self: AsyncRuns, yaml: str, message: str, *, source: str | None = None
    ) -> list[AppliedSuite]:
        """Apply the `evals:` section of a file's text; each changed suite is replaced."""
        return await self._run(calls.apply_eval_suites(yaml, message, source))

    async def eval_suites(
        self: AsyncRuns, *, route: str | None = None, tenant: str | None = None
    ) -> list[EvalSuite]:
        """The applied suites (of one route with `route`)."""
        return await self._run(calls.eval_suites(route, tenant))

    async def eval_suite(self: AsyncRuns, name: str, *, tenant: str | None = None) -> EvalSuite:
        """One applied suite: the caller's tenant's, else the shared one."""
        return await self._run(calls.eval_suite(name, tenant))
