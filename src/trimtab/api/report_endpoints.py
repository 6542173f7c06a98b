"""The report operations of the control-plane API (issue 14), declared once (api/schema.py):
the SLA report of a month, the spend forecast of each budget, unit economics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic reads typing's only on Python >= 3.12

from trimtab.api.endpoints import SLO_TENANT, TENANT
from trimtab.api.params import bad_param
from trimtab.api.schema import Endpoint, Param, choice, text, window
from trimtab.slo.report import Month, parse_month
from trimtab.telemetry.economics import ECONOMICS_GROUPS
from trimtab.types import READERS


def last_month(now: datetime) -> Month:
    """The calendar month before `now`'s (the last complete one)."""
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return parse_month(f"{year:04d}-{month:02d}")


def _month(value: str | None) -> Month:
    if value is None or value == "":
        return last_month(datetime.now(UTC))
    try:
        return parse_month(value)
    except ValueError as exc:
        raise bad_param("month", str(exc)) from None


MONTH = Param(
    "month",
    "query",
    "The calendar month (UTC), YYYY-MM; absent: the last complete month",
    {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"},
    _month,
)

# -- views --------------------------------------------------------------------------------


class ReportBudget(TypedDict):
    requests_allowed: float
    requests_spent: int
    spent_share: float | None  # None: no data (or an objective of 1)
    minutes_allowed: float
    minutes_spent: int
    minutes_with_data: int


class ReportSlo(TypedDict):
    name: str
    tenant: str | None
    sli_kind: str
    objective: float
    status: Literal["met", "missed", "no_data"]
    sli: float | None
    good: int
    valid: int
    bad: int
    budget: ReportBudget


class ReportIncident(TypedDict):
    id: str
    title: str
    type: str
    severity: int
    state: str
    opened_at: str
    resolved_at: str | None


class Csat(TypedDict):
    rated: int
    positive: int
    share_positive: float | None
    escalated: int


class FeatureTokens(TypedDict):
    feature: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class SessionCount(TypedDict):
    """Distinct sessions estimated from the rollups' HLL sketches (telemetry/sessions.py)."""

    estimate: float
    low: float  # the bounds at two standard deviations
    high: float
    relative_standard_error: float


class PerSession(TypedDict):
    usd: float
    low_usd: float | None
    high_usd: float | None


class Kpis(TypedDict):
    requests: int
    successful: int
    cost_usd: float
    cost_per_request_usd: float | None
    cost_per_successful_request_usd: float | None
    session_requests: int
    session_cost_usd: float
    sessions: SessionCount
    cost_per_session_usd: float | None
    cost_per_session: PerSession | None
    csat: Csat
    tokens_by_feature: list[FeatureTokens]


class ReportRoute(TypedDict):
    route: str | None
    slos: list[ReportSlo]
    met: int
    missed: int
    incidents: list[ReportIncident] | None  # None: this version records no incidents
    kpis: Kpis


SloReportView = TypedDict(
    "SloReportView",
    {"month": str, "from": str, "to": str, "routes": list[ReportRoute], "notes": list[str]},
)


class BudgetForecastView(TypedDict):
    scope: str
    budget: str
    period: str
    period_start: str
    period_end: str
    status: Literal["ok", "too_little_data"]
    days: int
    method: str | None
    interval: str | None
    confidence: float
    spent_usd: float
    limit_usd: float
    remaining_usd: float | None
    projected_usd: float | None
    low_usd: float | None
    high_usd: float | None
    chance_over: float | None
    crosses: bool


class NotForecast(TypedDict):
    scope: str
    budget: str
    reason: str


class ForecastSignal(TypedDict):
    source: str
    dedup_key: str
    severity: str
    firing: bool
    summary: str


class ForecastView(TypedDict):
    at: str
    tenant: str | None
    data: list[BudgetForecastView]
    not_forecast: list[NotForecast]
    signals: list[ForecastSignal]


class UnitFigures(TypedDict):
    requests: int
    successful: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_per_request_usd: float | None
    cost_per_successful_request_usd: float | None
    cost_per_1k_tokens_usd: float | None
    session_requests: int
    session_cost_usd: float
    sessions: SessionCount
    cost_per_session_usd: float | None  # the spend of session requests over the estimate
    cost_per_session: PerSession | None  # with the spend over each bound


EconomicsView = TypedDict(
    "EconomicsView",
    {
        "window": str,
        "group_by": str,
        "from": str,
        "to": str,
        "tenant": str | None,
        "groups": list[dict[str, Any]],  # UnitFigures plus the group's own key
        "total": UnitFigures,
        "notes": list[str],
    },
)

# -- operations ---------------------------------------------------------------------------

SLO_REPORT = Endpoint(
    "GET",
    "/api/slos/report",
    "getSloReport",
    "slos",
    "The SLA report of a calendar month: per route each SLO met or missed, budget spent, "
    "incidents and KPIs",
    READERS,
    SloReportView,
    params=(MONTH, text("route", "Only the SLOs of this route"), SLO_TENANT),
    description=(
        "Computed from the per-minute rollups, the feedback and the incidents, never the "
        "request rows. A non-admin's report covers its tenant's SLOs and traffic."
    ),
)
COST_FORECAST = Endpoint(
    "GET",
    "/api/costs/forecast",
    "getCostForecast",
    "costs",
    "Each budget's spend forecast to the end of its period, with its interval",
    READERS,
    ForecastView,
    params=(TENANT,),
)
UNIT_ECONOMICS = Endpoint(
    "GET",
    "/api/costs/economics",
    "getUnitEconomics",
    "costs",
    "Cost per request, per successful request, per 1,000 tokens and per session, grouped",
    READERS,
    EconomicsView,
    params=(
        window("30d", "How far back"),
        choice("group_by", "One group per value of", ECONOMICS_GROUPS, "route"),
        TENANT,
    ),
)
