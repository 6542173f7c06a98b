"""The responses of the control-plane API, as TypedDicts: what a handler answers, and what
the OpenAPI document (api/openapi.py) says it answers, through pydantic's JSON Schema.

A key some responses lack is `NotRequired`; a value that may be null says so. Names a
Python identifier cannot spell ("from", "gen_ai.request.model") use the functional form.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's only on Python >= 3.12


class ErrorDetail(TypedDict):
    message: str
    type: str
    param: str | None
    code: str
    request_id: str


class ErrorBody(TypedDict):
    """Every error of the API, in the OpenAI wire format."""

    error: ErrorDetail


class KeyView(TypedDict):
    id: str
    source: Literal["store", "config"]
    tenant: str
    role: str
    owner: str | None
    name: str | None
    hint: str | None
    status: str
    created_at: str | None
    created_by: str | None
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None


class CreatedKey(KeyView):
    key: Annotated[str, Field(description="the secret; shown once, never stored")]


class KeyList(TypedDict):
    data: list[KeyView]


class AppliedRoute(TypedDict):
    route: str
    status: Literal["created", "updated", "unchanged"]
    version: int
    digest: str
    parent: int | None
    stable_version: int | None
    tenant: str | None
    new_route: bool
    same_as: int | None
    updated: dict[str, list[Any]]
    variables: list[str]


class ApplyView(TypedDict):
    routes: list[AppliedRoute]
    message: str


class RouteView(TypedDict):
    name: str
    owner: str
    risk_tier: int
    tenant: str | None
    created_at: str | None
    created_by: str | None
    updated_at: str | None
    stable_version: int | None
    previous_stable_version: int | None
    latest_version: int | None


class RouteList(TypedDict):
    data: list[RouteView]


class VersionSummary(TypedDict):
    route: str
    number: int
    version: str
    digest: str
    parent: int | None
    author: str | None
    message: str
    created_at: str | None
    stable: bool
    variables: list[str]


class VersionView(VersionSummary):
    bundle: dict[str, Any]


class RouteDetail(RouteView):
    stable: VersionView | None


class VersionList(TypedDict):
    route: str
    data: list[VersionSummary]


ParamChange = TypedDict("ParamChange", {"name": str, "change": str, "from": Any, "to": Any})


ModelChange = TypedDict("ModelChange", {"from": str, "to": str})


class MessageChange(TypedDict):
    index: int
    change: str
    role_from: str | None
    role_to: str | None
    diff: str


DiffView = TypedDict(
    "DiffView",
    {
        "route": str,
        "from": str,
        "to": str,
        "identical": bool,
        "model": ModelChange | None,
        "params": list[ParamChange],
        "messages": list[MessageChange],
        "unified": str,
    },
)


class RouteEvent(TypedDict):
    id: int
    route: str
    at: str | None
    kind: str
    version: int | None
    actor: str | None
    reason: str | None
    detail: dict[str, Any] | None


class Timeline(TypedDict):
    route: str
    data: list[RouteEvent]
    next_after: int | None


class RolloutView(TypedDict):
    id: str
    route: str
    tenant: str | None
    stable_version: int
    candidate_version: int
    plan: str
    stages: list[dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    stage: int
    percent: float
    stage_started_at: str
    status: str
    started_at: str
    started_by: str | None
    ended_at: str | None
    reason: str | None
    last_decision: dict[str, Any] | None
    # on a start: what the plan is expected to do on the route's recent traffic
    forecast: NotRequired[RolloutForecastView]


class RolloutStageForecast(TypedDict):
    stage: int
    percent: float
    canary_per_s: float
    seconds: float
    canary_requests: int
    outcome: Literal["advance", "promote", "pause"]
    reason: str


class RolloutBaseline(TypedDict):
    requests: int
    seconds: float


class RolloutForecastView(TypedDict):
    plan: str
    method: str
    requests_per_s: float
    baseline: RolloutBaseline
    stages: list[RolloutStageForecast]
    promote_after_s: float | None
    promote_canary_requests: int | None
    waiting_on: list[str]
    warnings: list[str]


class RollbackView(TypedDict):
    route: str
    stable_version: int
    override_gate: bool


class AttestationView(TypedDict):
    route: str
    version: int
    kind: str
    result: str
    by: str | None


class FeedbackView(TypedDict):
    request_id: str
    route: str | None
    version: str | None
    score: float
    negative: bool
    escalated: bool


RequestView = TypedDict(
    "RequestView",
    {
        "id": str,
        "started_at": str,
        "ended_at": str,
        "api": str,
        "gen_ai.operation.name": str | None,
        "gen_ai.request.model": str | None,
        "gen_ai.response.model": str | None,
        "gen_ai.response.id": str | None,
        "gen_ai.provider.name": str | None,
        "gen_ai.usage.input_tokens": int | None,
        "gen_ai.usage.output_tokens": int | None,
        "gen_ai.response.finish_reasons": list[str] | None,
        "provider": str | None,
        "upstream_model": str | None,
        "tenant": str | None,
        "key_id": str | None,
        "user.id": str | None,
        "session.id": str | None,
        "feature": str | None,
        "route": str | None,
        "version": str | None,
        "http.response.status_code": int,
        "error.type": str | None,
        "error_message": str | None,
        "latency_ms": float | None,
        "ttft_ms": float | None,
        "overhead_ms": float | None,
        "cost_usd": float | None,
        "streamed": bool,
        "attributes": dict[str, Any] | None,
        # with telemetry.record_bodies: the bodies as recorded (null when not)
        "request": NotRequired[Any],
        "upstream_request": NotRequired[Any],
        "response": NotRequired[Any],
    },
)


class RequestList(TypedDict):
    data: list[RequestView]
    next_cursor: str | None


class Quantiles(TypedDict):
    p50: float | None
    p95: float | None
    p99: float | None


class RollupSummary(TypedDict):
    """One group's figures; the group's own key (named by group_by) comes first."""

    count: int
    errors: int
    error_rate: float
    latency_ms: Quantiles
    ttft_ms: Quantiles
    input_tokens: int
    output_tokens: int
    cost_usd: float


MetricsSummary = TypedDict(
    "MetricsSummary",
    {
        "window": str,
        "group_by": str,
        "from": str,
        "to": str,
        "tenant": str | None,
        "groups": list[RollupSummary],
        "total": RollupSummary,
    },
)


class CostFigures(TypedDict):
    """One group's spend; the group's own key (named by group_by) comes first."""

    cost_usd: float
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int


CostsView = TypedDict(
    "CostsView",
    {
        "window": str,
        "group_by": str,
        "from": str,
        "to": str,
        "tenant": str | None,
        "groups": list[CostFigures],
        "total": CostFigures,
    },
)


class BudgetValue(TypedDict):
    scope: str
    spent_usd: float
    reserved_usd: float
    used: float
    exceeded: bool


class Budget(TypedDict):
    scope: str
    period: str
    period_start: str
    period_end: str
    limit_usd: float
    on_exceed: str
    values: list[BudgetValue]


class BudgetsView(TypedDict):
    at: str
    tenant: str | None
    data: list[Budget]


class BudgetEvent(TypedDict):
    id: int
    at: str
    scope: str
    period: str
    period_start: str
    threshold: float
    spent_usd: float
    limit_usd: float
    on_exceed: str


class BudgetEvents(TypedDict):
    tenant: str | None
    data: list[BudgetEvent]


class AuditEntry(TypedDict):
    id: int
    at: str
    action: str
    actor: str | None
    actor_key_id: str | None
    tenant: str | None
    target: str | None
    detail: Any
    remote_addr: str | None
    request_id: str | None


class AuditList(TypedDict):
    data: list[AuditEntry]
    next_cursor: str | None


class Breaker(TypedDict):
    deployment: str
    state: Literal["closed", "open", "half_open"]
    open_until: float | None
    failure_ratio: float
    min_requests: int
    window_s: float
    cooldown_s: float


class BreakerList(TypedDict):
    data: list[Breaker]


class OpenAPIDocument(TypedDict):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
