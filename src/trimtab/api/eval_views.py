"""The response shapes of datasets and eval runs (declared in api/eval_endpoints.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's only on Python >= 3.12


class DatasetVersionView(TypedDict):
    dataset: str
    tenant: str | None
    version: int
    digest: str
    items: int
    message: str
    author: str | None
    created_at: str


class DatasetPushed(DatasetVersionView):
    created: Annotated[bool, Field(description="false: an existing version holds these items")]


class DatasetList(TypedDict):
    data: list[DatasetVersionView]


class DatasetVersions(TypedDict):
    dataset: str
    tenant: str | None
    data: list[DatasetVersionView]


class DatasetItem(TypedDict):
    id: str
    variables: NotRequired[dict[str, Any]]
    messages: NotRequired[list[dict[str, Any]]]
    expected: NotRequired[Any]
    tags: NotRequired[list[str]]
    metadata: NotRequired[dict[str, Any]]


class DatasetVersionDetail(DatasetVersionView):
    data: list[DatasetItem]


DatasetDiffView = TypedDict(
    "DatasetDiffView",
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


class EvalRunView(TypedDict):
    id: str
    suite: str
    tenant: str | None
    status: Literal["complete", "incomplete"]
    dataset: str
    dataset_tenant: str | None
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


class EvalScorerSummary(TypedDict):
    scorer: str
    scored: int
    errors: int
    mean: float | None
    mean_interval: list[float] | None
    pass_rate: float | None
    pass_rate_interval: list[float] | None
    method: str
    confidence: float


class EvalSummary(TypedDict):
    scorers: list[EvalScorerSummary]
    failed_items: list[str]
    latency_ms: dict[str, float | None]
    input_tokens: int
    output_tokens: int


class EvalRunDetail(EvalRunView):
    summary: EvalSummary
    bundle: Annotated[
        dict[str, Any] | None, Field(description="the route version's bundle; null: a model")
    ]


class EvalRunList(TypedDict):
    data: list[EvalRunView]


class EvalResultView(TypedDict):
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


class EvalResultList(TypedDict):
    run: str
    data: list[EvalResultView]


class EvalRecorded(TypedDict):
    run: str
    recorded: Annotated[int, Field(description="results new to the run (a repeat is ignored)")]
    done: int
    items: int


class EvalCacheHits(TypedDict):
    data: list[EvalResultView]


class EvalComparison(TypedDict):
    baseline: str
    candidate: str
    outcome: Literal["pass", "fail", "no_verdict"]
    reasons: list[str]
    items: int
    errors: dict[str, int]
    regressions: list[str]
    scorers: list[dict[str, Any]]


# -- SLOs ---------------------------------------------------------------------------------
