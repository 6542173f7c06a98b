"""The response shapes of SLOs (declared in api/endpoints.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's only on Python >= 3.12


class AppliedSlo(TypedDict):
    slo: str
    tenant: str | None
    status: Literal["created", "updated", "unchanged"]
    digest: str
    suite_scope: Annotated[
        Literal["shared", "tenant"] | None,
        Field(description="an eval-score SLO's: the suite its SLI reads; null: it names none"),
    ]


class RemovedSlo(TypedDict):
    slo: str
    tenant: str | None
    digest: str
    alerts_resolved: Annotated[list[int], Field(description="its open alerts, resolved")]


class SloApplyView(TypedDict):
    slos: list[AppliedSlo]
    pruned: Annotated[
        list[RemovedSlo], Field(description="with `prune`: the SLOs deleted (or to be)")
    ]
    dry_run: bool
    message: str


class SloBudget(TypedDict):
    total: Annotated[float, Field(description="bad requests the objective allows")]
    spent: Annotated[int, Field(description="bad requests")]
    remaining: float
    spent_share: float | None
    remaining_share: float | None


class SloWindow(TypedDict):
    window: str
    minutes: int
    good: int
    valid: int
    bad: int
    burn: float | None
    low: float | None
    high: float | None
    enough: Annotated[bool, Field(description="at least min_events valid requests")]


class SloAlert(TypedDict):
    severity: Literal["page", "ticket"]
    long: str
    short: str
    factor: float
    state: Literal["firing", "ok", "too_little_data"]
    min_events: int
    method: str
    confidence: float
    long_window: SloWindow
    short_window: SloWindow


class SloStatusView(TypedDict):
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
    budget: SloBudget
    firing: Literal["page", "ticket"] | None
    alerts: list[SloAlert]
    notes: list[str]


class SloList(TypedDict):
    data: list[SloStatusView]
