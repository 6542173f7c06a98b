"""The main resources the API answers with, as the README's API tables describe them."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class Key(TypedDict):
    id: str
    tenant: str
    role: str
    owner: str | None
    name: str | None
    status: Literal["active", "expired", "revoked"]
    source: Literal["store", "config"]
    expires_at: str | None
    hint: NotRequired[str | None]
    created_at: NotRequired[str | None]
    revoked_at: NotRequired[str | None]


class CreatedKey(Key):
    key: str  # shown only in this answer


class Applied(TypedDict):
    route: str
    status: Literal["created", "updated", "unchanged"]
    version: int
    digest: str
    parent: int | None
    stable_version: int | None
    new_route: bool
    updated: dict[str, list[Any]]
    same_as: NotRequired[int | None]
    variables: NotRequired[list[str]]


class Route(TypedDict):
    name: str
    tenant: str | None
    owner: str
    risk_tier: int
    stable_version: int | None
    latest_version: int | None
    updated_at: str | None


class Version(TypedDict):
    version: str
    stable: bool
    digest: str
    created_at: str
    author: str | None
    message: str
    bundle: NotRequired[dict[str, Any]]


Diff = TypedDict(
    "Diff",
    {
        "from": str,
        "to": str,
        "model": Any,
        "params": dict[str, Any],
        "messages": Any,
        "unified": str,
    },
)


class DatasetVersion(TypedDict):
    dataset: str
    tenant: str | None  # None: a shared dataset
    version: int
    digest: str  # the SHA-256 of its items: the same items, the same digest
    items: int
    message: str
    author: str | None
    created_at: str


class PushedDataset(DatasetVersion):
    created: bool  # False: an existing version holds exactly these items


class DatasetItem(TypedDict):
    id: str
    variables: NotRequired[dict[str, Any]]
    messages: NotRequired[list[dict[str, Any]]]
    expected: NotRequired[Any]
    tags: NotRequired[list[str]]
    metadata: NotRequired[dict[str, Any]]


class DatasetContents(DatasetVersion):
    data: list[DatasetItem]  # in order; as JSON Lines, a file `push_dataset` takes back


DatasetDiff = TypedDict(
    "DatasetDiff",
    {
        "dataset": str,
        "tenant": str | None,
        "from": int,
        "to": int,
        "added": list[str],
        "removed": list[str],
        "changed": list[str],
    },
)


class Event(TypedDict):
    at: str
    kind: str
    version: int | None
    actor: str | None
    reason: str | None
    detail: dict[str, Any] | None


class Rollout(TypedDict):
    id: str
    route: str
    tenant: str | None
    stable_version: int
    candidate_version: int
    plan: str
    stages: list[dict[str, Any]]
    metrics: dict[str, Any]
    stage: int
    percent: float
    stage_started_at: str
    status: str
    started_at: str
    started_by: str | None
    ended_at: str | None
    reason: str | None
    last_decision: dict[str, Any] | None
    forecast: NotRequired[RolloutForecast]  # on a start


class RolloutForecast(TypedDict):
    """What a plan is expected to do on the route's recent traffic (docs/canary.md)."""

    plan: str
    method: str
    requests_per_s: float
    baseline: dict[str, Any]
    stages: list[dict[str, Any]]
    promote_after_s: float | None
    promote_canary_requests: int | None
    waiting_on: list[str]
    warnings: list[str]


class Rollback(TypedDict):
    route: str
    stable_version: int
    override_gate: bool


class Attestation(TypedDict):
    version: int
    kind: str
    result: Literal["pass", "fail"]
    by: str
    note: NotRequired[str | None]
    url: NotRequired[str | None]


# a recorded request; the list leaves out the bodies (`request`, `response`); keys named
# after the OpenTelemetry GenAI conventions where one exists (README: "Finding requests")
RequestRecord = TypedDict(
    "RequestRecord",
    {
        "id": str,
        "started_at": str,
        "ended_at": str,
        "api": str,
        "gen_ai.operation.name": str,
        "gen_ai.request.model": str | None,
        "gen_ai.response.model": str | None,
        "gen_ai.provider.name": str | None,
        "gen_ai.usage.input_tokens": int | None,
        "gen_ai.usage.output_tokens": int | None,
        "gen_ai.response.finish_reasons": list[str] | None,
        "http.response.status_code": int,
        "error.type": str | None,
        "user.id": str | None,
        "session.id": str | None,
        "provider": str | None,
        "upstream_model": str | None,
        "tenant": str,
        "key_id": str | None,
        "feature": str | None,
        "route": str | None,
        "version": str | None,
        "error_message": str | None,
        "latency_ms": float | None,
        "ttft_ms": float | None,
        "overhead_ms": float | None,
        "cost_usd": float | None,
        "streamed": bool,
        "request": NotRequired[Any],
        "response": NotRequired[Any],
    },
)


class Summary(TypedDict):
    window: str
    group_by: str
    tenant: str | None
    groups: list[dict[str, Any]]
    total: dict[str, Any]


class Costs(TypedDict):
    window: str
    group_by: str
    tenant: str | None
    groups: list[dict[str, Any]]
    total: dict[str, Any]


class AuditEvent(TypedDict, total=False):
    at: str
    action: str
    actor: str
    tenant: str | None
    target: str | None
    request_id: str | None
    detail: dict[str, Any] | None


class RequestFilters(TypedDict, total=False):
    """What `iter_requests` takes: the filters of `requests`, `limit` the page size."""

    since: str | None
    until: str | None
    model: str | None
    provider: str | None
    tenant: str | None
    status: str | int | None
    user: str | None
    session: str | None
    feature: str | None
    route: str | None
    version: int | str | None
    text: str | None
    limit: int | None


class AuditFilters(TypedDict, total=False):
    """What `iter_audit` takes: the filters of `audit`, `limit` the page size."""

    since: str | None
    until: str | None
    action: str | None
    actor: str | None
    tenant: str | None
    target: str | None
    limit: int | None


class EvalRun(TypedDict):
    id: str
    suite: str
    tenant: str | None
    status: str  # "complete" | "incomplete"
    dataset: str
    dataset_tenant: str | None  # None: a shared dataset
    dataset_version: int
    route: str | None
    route_version: int | None
    model: str | None
    target_digest: str
    items: int
    done: int
    errors: int
    cached: int
    created_at: str
    created_by: str | None
    definition: dict[str, Any]


class EvalRunDetail(EvalRun):
    summary: dict[str, Any]  # per scorer: mean, pass rate, their 95% intervals
    bundle: dict[str, Any] | None  # the route version's; None for a model


class EvalResult(TypedDict):
    item_id: str
    request_digest: str
    output: str | None
    error: str | None
    scores: dict[str, dict[str, Any]]
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    request_id: str | None
    cached: bool


class EvalRecorded(TypedDict):
    run: str
    recorded: int  # new to the run; a repeated item is left as it was
    done: int
    items: int


class EvalComparison(TypedDict):
    baseline: str
    candidate: str
    outcome: str  # "pass" | "fail" | "no_verdict"
    reasons: list[str]
    items: int
    errors: dict[str, int]
    regressions: list[str]
    scorers: list[dict[str, Any]]


class AppliedSlo(TypedDict):
    slo: str
    tenant: str | None
    status: Literal["created", "updated", "unchanged"]
    digest: str
    suite_scope: Literal["shared", "tenant"] | None  # the suite its SLI reads; None: no suite


class RemovedSlo(TypedDict):
    """An SLO deleted (by name, or by an apply that prunes), with its alerts resolved."""

    slo: str
    tenant: str | None
    digest: str
    alerts_resolved: list[int]


class PrunedSlos(TypedDict):
    """An apply that prunes: what was applied and what was deleted (or, in a dry run,
    would be)."""

    slos: list[AppliedSlo]
    pruned: list[RemovedSlo]
    dry_run: bool
    message: str


class SloStatus(TypedDict):
    """An SLO's status: its SLI over the window, error budget, and each alert rule's
    verdict with the burn over both its windows (see GET /api/slos)."""

    name: str
    tenant: str | None
    definition: dict[str, Any]
    at: str
    standing: Literal["no_data", "meeting", "missing"]
    sli: float | None
    objective: float
    window: str
    good: int
    valid: int
    bad: int
    budget: dict[str, Any]
    firing: Literal["page", "ticket"] | None
    alerts: list[dict[str, Any]]
    notes: list[str]


class AppliedSuite(TypedDict):
    suite: str
    tenant: str | None
    status: Literal["created", "updated", "unchanged"]
    digest: str


class EvalSuite(TypedDict):
    """An applied eval suite: its definition as under its name in an `evals:` section."""

    suite: str
    tenant: str | None
    definition: dict[str, Any]
    digest: str
    created_at: str
    created_by: str | None
    updated_at: str
    updated_by: str | None
