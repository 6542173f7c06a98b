"""Every API call the clients make, built once: `Client` and `AsyncClient` only send them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from trimtab.client._core import (
    Call,
    Page,
    body,
    listed,
    paged,
    params,
    route_path,
    same,
    segment,
    typed,
)
from trimtab.client.types import (
    Applied,
    AppliedSlo,
    AppliedSuite,
    Attestation,
    AuditEvent,
    Costs,
    CreatedKey,
    DatasetContents,
    DatasetDiff,
    DatasetVersion,
    Diff,
    EvalComparison,
    EvalRecorded,
    EvalResult,
    EvalRun,
    EvalRunDetail,
    EvalSuite,
    Key,
    PrunedSlos,
    PushedDataset,
    RemovedSlo,
    RequestRecord,
    Rollback,
    Rollout,
    RolloutForecast,
    Route,
    SloStatus,
    Summary,
    Version,
)

Move = Literal["pause", "resume", "promote", "abort"]


def _scoped(tenant: str | None) -> dict[str, str | int | float | bool]:
    """`tenant` picks that tenant's route ("" the shared one) instead of the caller's."""
    return {} if tenant is None else {"tenant": tenant}


def create_key(
    tenant: str, role: str, owner: str, name: str | None, expires_in: str | None
) -> Call[CreatedKey]:
    fields = {"tenant": tenant, "role": role, "owner": owner, "name": name}
    fields["expires_in"] = expires_in
    return Call("POST", "/api/keys", typed(CreatedKey), body=body(fields))


def keys(tenant: str | None) -> Call[list[Key]]:
    return Call("GET", "/api/keys", listed(Key), params({"tenant": tenant}))


def key(key_id: str) -> Call[Key]:
    return Call("GET", f"/api/keys/{segment(key_id)}", typed(Key))


def revoke_key(key_id: str) -> Call[Key]:
    return Call("DELETE", f"/api/keys/{segment(key_id)}", typed(Key))


def apply(yaml: str, message: str, source: str | None) -> Call[list[Applied]]:
    fields = body({"yaml": yaml, "message": message, "source": source})
    return Call("POST", "/api/routes/apply", lambda d: list[Applied](d["routes"]), body=fields)


def routes() -> Call[list[Route]]:
    return Call("GET", "/api/routes", listed(Route))


def route(name: str, tenant: str | None) -> Call[dict[str, Any]]:
    return Call("GET", route_path(name), same, _scoped(tenant))


def versions(name: str, tenant: str | None) -> Call[list[Version]]:
    return Call("GET", route_path(name, "versions"), listed(Version), _scoped(tenant))


def version(name: str, number: int | str, tenant: str | None) -> Call[Version]:
    path = route_path(name, f"versions/{segment(str(number))}")
    return Call("GET", path, typed(Version), _scoped(tenant))


def diff(
    name: str, before: int | str | None, after: int | str | None, tenant: str | None
) -> Call[Diff]:
    frm = None if before is None else str(before)
    query = params({"from": frm, "to": None if after is None else str(after), "tenant": tenant})
    return Call("GET", route_path(name, "diff"), typed(Diff), query)


def timeline_page(
    name: str, after: int | None, limit: int, tenant: str | None
) -> Call[dict[str, Any]]:
    query = params({"limit": limit, "after": after, "tenant": tenant})
    return Call("GET", route_path(name, "timeline"), same, query)


def start_rollout(
    name: str, to: int | str, plan: str | None, reason: str | None, tenant: str | None
) -> Call[Rollout]:
    fields = body({"to": str(to), "plan": plan, "reason": reason})
    path = route_path(name, "rollouts")
    return Call("POST", path, typed(Rollout), _scoped(tenant), fields)


def rollout(name: str, tenant: str | None) -> Call[Rollout]:
    return Call("GET", route_path(name, "rollout"), typed(Rollout), _scoped(tenant))


def forecast(name: str, plan: str | None, tenant: str | None) -> Call[RolloutForecast]:
    params = _scoped(tenant) | ({} if plan is None else {"plan": plan})
    return Call("GET", route_path(name, "forecast"), typed(RolloutForecast), params)


def move(name: str, action: Move, reason: str, tenant: str | None) -> Call[Rollout]:
    path = route_path(name, f"rollout/{action}")
    return Call("POST", path, typed(Rollout), _scoped(tenant), {"reason": reason})


def rollback(
    name: str, reason: str, to: int | str | None, override_gate: bool, tenant: str | None
) -> Call[Rollback]:
    fields = body({"to": None if to is None else str(to), "reason": reason})
    if override_gate:
        fields["override_gate"] = True
    return Call("POST", route_path(name, "rollback"), typed(Rollback), _scoped(tenant), fields)


def attest(
    name: str,
    number: int | str,
    kind: str,
    result: str,
    note: str | None,
    url: str | None,
    tenant: str | None,
) -> Call[Attestation]:
    path = route_path(name, f"versions/{segment(str(number))}/attestations")
    fields = body({"kind": kind, "result": result, "note": note, "url": url})
    return Call("POST", path, typed(Attestation), _scoped(tenant), fields)


DatasetFormat = Literal["jsonl", "csv"]


def dataset_path(name: str, rest: str = "") -> str:
    return "/api/datasets/" + segment(name) + (f"/{rest}" if rest else "")


def push_dataset(
    name: str,
    content: str,
    message: str,
    format: DatasetFormat,
    source: str | None,
    tenant: str | None,
) -> Call[PushedDataset]:
    fields = body({"format": format, "content": content, "message": message, "source": source})
    if tenant is not None:
        fields["tenant"] = tenant  # "" (the shared datasets) is a value, not unset
    return Call("POST", dataset_path(name, "versions"), typed(PushedDataset), body=fields)


def datasets(tenant: str | None) -> Call[list[DatasetVersion]]:
    return Call("GET", "/api/datasets", listed(DatasetVersion), _scoped(tenant))


def dataset_versions(name: str, tenant: str | None) -> Call[list[DatasetVersion]]:
    return Call("GET", dataset_path(name), listed(DatasetVersion), _scoped(tenant))


def dataset_version(name: str, number: int | str, tenant: str | None) -> Call[DatasetContents]:
    path = dataset_path(name, f"versions/{segment(str(number))}")
    return Call("GET", path, typed(DatasetContents), _scoped(tenant))


def dataset_diff(
    name: str, before: int | str | None, after: int | str | None, tenant: str | None
) -> Call[DatasetDiff]:
    query = params(
        {
            "from": None if before is None else str(before),
            "to": None if after is None else str(after),
        }
    )
    return Call("GET", dataset_path(name, "diff"), typed(DatasetDiff), {**query, **_scoped(tenant)})


def feedback(
    request_id: str,
    score: float | None,
    thumbs: Literal["up", "down"] | None,
    comment: str | None,
    escalated: bool | None,
) -> Call[dict[str, Any]]:
    fields = body(
        {
            "request_id": request_id,
            "score": score,
            "thumbs": thumbs,
            "comment": comment,
            "escalated": escalated,
        }
    )
    return Call("POST", "/api/feedback", same, body=fields)


def version_label(version: int | str | None) -> str | None:
    """A version as records carry it: 2, "2" and "v2" are all "v2"."""
    if version is None:
        return None
    text = str(version)
    return f"v{text}" if text.isdigit() else text


Filters = dict[str, str | int | float | bool | None]


def requests(filters: Filters, limit: int | None, cursor: str | None) -> Call[Page[RequestRecord]]:
    query = params({**filters, "limit": limit, "cursor": cursor})
    return Call("GET", "/api/requests", paged(RequestRecord), query)


def request(request_id: str) -> Call[RequestRecord]:
    return Call("GET", f"/api/requests/{segment(request_id)}", typed(RequestRecord))


def summary(window: str | None, group_by: str | None, tenant: str | None) -> Call[Summary]:
    query = params({"window": window, "group_by": group_by, "tenant": tenant})
    return Call("GET", "/api/metrics/summary", typed(Summary), query)


def costs(window: str | None, group_by: str | None, tenant: str | None) -> Call[Costs]:
    query = params({"window": window, "group_by": group_by, "tenant": tenant})
    return Call("GET", "/api/costs", typed(Costs), query)


def budgets(tenant: str | None) -> Call[dict[str, Any]]:
    return Call("GET", "/api/budgets", same, params({"tenant": tenant}))


def budget_events(
    since: str | None, limit: int | None, tenant: str | None
) -> Call[list[dict[str, Any]]]:
    query = params({"since": since, "limit": limit, "tenant": tenant})
    return Call("GET", "/api/budget-events", listed(dict[str, Any]), query)


def audit(filters: Filters, limit: int | None, cursor: str | None) -> Call[Page[AuditEvent]]:
    query = params({**filters, "limit": limit, "cursor": cursor})
    return Call("GET", "/api/audit", paged(AuditEvent), query)


def erase_user(user: str, tenant: str | None) -> Call[dict[str, Any]]:
    return Call("POST", "/api/erasures", same, body=body({"user": user, "tenant": tenant}))


def export_user(user: str, tenant: str | None) -> Call[dict[str, Any]]:
    """Streamed JSON Lines: the clients read it with `stream`, not `_run`."""
    return Call("GET", "/api/exports", same, params({"user": user, "tenant": tenant}))


def eval_run_path(run_id: str, rest: str = "") -> str:
    return "/api/evals/runs/" + segment(run_id) + (f"/{rest}" if rest else "")


def create_eval_run(
    suite: str, definition: dict[str, Any], version: int | str | None, source: str | None
) -> Call[EvalRunDetail]:
    fields = body({"suite": suite, "definition": definition, "version": version, "source": source})
    return Call("POST", "/api/evals/runs", typed(EvalRunDetail), body=fields)


def eval_runs(suite: str | None, tenant: str | None, limit: int | None) -> Call[list[EvalRun]]:
    query = params({"suite": suite, "tenant": tenant, "limit": limit})
    return Call("GET", "/api/evals/runs", listed(EvalRun), query)


def eval_run(run_id: str) -> Call[EvalRunDetail]:
    return Call("GET", eval_run_path(run_id), typed(EvalRunDetail))


def eval_results(run_id: str) -> Call[list[EvalResult]]:
    return Call("GET", eval_run_path(run_id, "results"), listed(EvalResult))


def record_eval_results(run_id: str, results: list[dict[str, Any]]) -> Call[EvalRecorded]:
    path = eval_run_path(run_id, "results")
    return Call("POST", path, typed(EvalRecorded), body={"results": results})


def eval_cache(run_id: str, digests: list[str]) -> Call[list[EvalResult]]:
    path = eval_run_path(run_id, "cache")
    return Call("POST", path, listed(EvalResult), body={"digests": digests})


def compare_eval_runs(baseline: str | None, candidate: str) -> Call[EvalComparison]:
    path = eval_run_path(candidate, "compare")
    return Call("GET", path, typed(EvalComparison), params({"baseline": baseline}))


def apply_slos(yaml: str, message: str, source: str | None) -> Call[list[AppliedSlo]]:
    fields = body({"yaml": yaml, "message": message, "source": source})
    return Call("POST", "/api/slos/apply", lambda d: list[AppliedSlo](d["slos"]), body=fields)


def prune_slos(
    yaml: str,
    message: str,
    source: str | None,
    dry_run: bool,
    planned_routes: Sequence[str],
    planned_suites: Sequence[str] = (),
) -> Call[PrunedSlos]:
    fields = body({"yaml": yaml, "message": message, "source": source, "prune": True,
                   "dry_run": dry_run, "planned_routes": list(planned_routes) or None,
                   "planned_suites": list(planned_suites) or None})  # fmt: skip
    return Call("POST", "/api/slos/apply", typed(PrunedSlos), body=fields)


def delete_slo(name: str, tenant: str | None) -> Call[RemovedSlo]:
    return Call("DELETE", f"/api/slos/{segment(name)}", typed(RemovedSlo), _scoped(tenant))


def slos(route: str | None, tenant: str | None) -> Call[list[SloStatus]]:
    return Call("GET", "/api/slos", listed(SloStatus), params({"route": route, "tenant": tenant}))


def slo(name: str, tenant: str | None) -> Call[SloStatus]:
    return Call("GET", f"/api/slos/{segment(name)}", typed(SloStatus), _scoped(tenant))


def apply_eval_suites(yaml: str, message: str, source: str | None) -> Call[list[AppliedSuite]]:
    fields = body({"yaml": yaml, "message": message, "source": source})
    path = "/api/evals/suites/apply"
    return Call("POST", path, lambda d: list[AppliedSuite](d["suites"]), body=fields)


def eval_suites(route: str | None, tenant: str | None) -> Call[list[EvalSuite]]:
    filters = params({"route": route, "tenant": tenant})
    return Call("GET", "/api/evals/suites", listed(EvalSuite), filters)


def eval_suite(name: str, tenant: str | None) -> Call[EvalSuite]:
    return Call("GET", f"/api/evals/suites/{segment(name)}", typed(EvalSuite), _scoped(tenant))


def slo_report(month: str | None, route: str | None, tenant: str | None) -> Call[dict[str, Any]]:
    query = params({"month": month, "route": route}) | _scoped(tenant)
    return Call("GET", "/api/slos/report", same, query)


def cost_forecast(tenant: str | None) -> Call[dict[str, Any]]:
    return Call("GET", "/api/costs/forecast", same, params({"tenant": tenant}))


def unit_economics(
    window: str | None, group_by: str | None, tenant: str | None
) -> Call[dict[str, Any]]:
    query = params({"window": window, "group_by": group_by, "tenant": tenant})
    return Call("GET", "/api/costs/economics", same, query)


def attest_eval_run(run_id: str, baseline: str | None) -> Call[dict[str, Any]]:
    path = eval_run_path(run_id, "attestation")
    return Call("POST", path, same, body=body({"baseline": baseline}))


# -- alerts and silences (docs/alerts.md) -------------------------------------------------


def alerts(
    state: str | None, severity: str | None, limit: int | None
) -> Call[list[dict[str, Any]]]:
    query = params({"state": state, "severity": severity, "limit": limit})
    return Call("GET", "/api/alerts", lambda d: list[dict[str, Any]](d["data"]), query)


def alert(alert_id: int) -> Call[dict[str, Any]]:
    return Call("GET", f"/api/alerts/{int(alert_id)}", same)


def ack_alert(alert_id: int, message: str) -> Call[dict[str, Any]]:
    path = f"/api/alerts/{int(alert_id)}/ack"
    return Call("POST", path, same, body=body({"message": message}))


def silences(every: bool) -> Call[list[dict[str, Any]]]:
    query = params({"state": "all" if every else None})
    return Call("GET", "/api/silences", lambda d: list[dict[str, Any]](d["data"]), query)


def silence(matchers: list[str], duration: str, message: str) -> Call[dict[str, Any]]:
    fields = body({"matchers": matchers, "duration": duration, "message": message})
    return Call("POST", "/api/silences", same, body=fields)


def unsilence(silence_id: int) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/api/silences/{int(silence_id)}", same)


def dataset_from_requests(
    name: str,
    route: str,
    *,
    version: str | None,
    negative_feedback: bool,
    errors: bool,
    since: str | None,
    limit: int | None,
    message: str | None,
    tenant: str | None,
) -> Call[dict[str, Any]]:
    fields: dict[str, Any] = {
        "route": route, "version": version, "since": since, "limit": limit,
        "message": message, "tenant": tenant,
        "feedback": "negative" if negative_feedback else None,
        "status": "error" if errors else None,
    }  # fmt: skip
    return Call("POST", dataset_path(name, "from-requests"), same, body=body(fields))
