"""The SLA report of a calendar month (pure): per route, each SLO met or missed over the
month, the error budget it spent (as requests and as minutes), the incidents, and the
KPIs — request volume, CSAT from feedback, cost per successful request and per session,
tokens per feature. Everything here is computed from what `slo/report_data.py` reads: the
SLIs' per-minute counts and the month's sums from the per-minute rollups, the feedback
counts, the incidents; never request rows.

Minutes of budget: a month of M minutes under an objective o allows (1 - o) * M bad
minutes; a minute is bad when its own SLI (good / valid in that minute) is below the
objective; minutes without traffic are neither. Requests of budget: (1 - o) * valid bad
requests allowed, the bad ones spent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trimtab.slo.burn import Counts
from trimtab.slo.spec import SloDefinition
from trimtab.telemetry.sessions import ESTIMATOR, SessionUnion, per_session

SESSIONS_NOTE = ESTIMATOR + (
    "; cost per session: the spend of the requests that carry a session id over those sessions"
)
INCIDENTS_NOT_RECORDED = "incidents: not recorded by this version"
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in UTC: [start, end)."""

    label: str  # "2026-11"
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


def parse_month(text: str) -> Month:
    """`2026-11` -> that month; a ValueError naming the expected form otherwise."""
    match = _MONTH.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a month: expected YYYY-MM, e.g. 2026-11")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return Month(text, start, end)


@dataclass(frozen=True, slots=True)
class SloMonth:
    """One SLO over one month."""

    slo: SloDefinition
    scope: str  # the tenant that owns it, "" for a shared one
    counts: Counts
    minutes_with_data: int
    bad_minutes: int
    budget_minutes: float  # (1 - objective) * the month's minutes

    @property
    def sli(self) -> float | None:
        return self.counts.good / self.counts.valid if self.counts.valid else None

    @property
    def met(self) -> bool | None:
        """Met, missed, or None without data (never a 100 % over no traffic)."""
        value = self.sli
        return None if value is None else value >= self.slo.objective

    @property
    def budget_requests(self) -> float:
        return (1 - self.slo.objective) * self.counts.valid

    @property
    def spent_share(self) -> float | None:
        """Bad requests over those allowed; None without data. Above 1: overspent."""
        allowed = self.budget_requests
        if not self.counts.valid:
            return None
        return self.counts.bad / allowed if allowed > 0 else math.inf

    def view(self) -> dict[str, Any]:
        d = self.slo
        return {
            "name": d.name,
            "tenant": self.scope or None,
            "sli_kind": d.sli.kind,
            "objective": d.objective,
            "status": "no_data" if self.met is None else "met" if self.met else "missed",
            "sli": self.sli,
            "good": self.counts.good,
            "valid": self.counts.valid,
            "bad": self.counts.bad,
            "budget": {
                "requests_allowed": round(self.budget_requests, 6),
                "requests_spent": self.counts.bad,
                "spent_share": _finite(self.spent_share),
                "minutes_allowed": round(self.budget_minutes, 6),
                "minutes_spent": self.bad_minutes,
                "minutes_with_data": self.minutes_with_data,
            },
        }


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 6) if math.isfinite(value) else None


def slo_month(
    slo: SloDefinition, scope: str, series: Mapping[datetime, Counts], month: Month
) -> SloMonth:
    """The SLO over the month from its per-minute counts (minutes outside it ignored)."""
    good = valid = bad_minutes = with_data = 0
    for minute, counts in series.items():
        if not month.start <= minute < month.end or not counts.valid:
            continue
        good += counts.good
        valid += counts.valid
        with_data += 1
        if counts.good / counts.valid < slo.objective:
            bad_minutes += 1
    return SloMonth(
        slo,
        scope,
        Counts(good, valid),
        with_data,
        bad_minutes,
        (1 - slo.objective) * month.minutes,
    )


@dataclass(slots=True)
class Usage:
    """Sums of rollup rows (one route's, or one feature's within it)."""

    requests: int = 0
    successful: int = 0  # status < 400
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    session_requests: int = 0  # the requests that carry a session id
    session_cost_usd: float = 0.0  # their spend
    sessions: SessionUnion = field(default_factory=SessionUnion)  # their sessions' sketch

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.successful += other.successful
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.session_requests += other.session_requests
        self.session_cost_usd += other.session_cost_usd
        self.sessions.merge(other.sessions)


@dataclass(frozen=True, slots=True)
class Feedback:
    rated: int = 0
    positive: int = 0  # rated and not negative
    escalated: int = 0


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    title: str
    type: str
    severity: int
    state: str
    opened_at: datetime
    resolved_at: datetime | None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "severity": self.severity,
            "state": self.state,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }


@dataclass(slots=True)
class RouteMonth:
    """What the report says of one route (or of SLOs that select no route: `route` None)."""

    route: str | None
    slos: list[SloMonth] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    by_feature: dict[str, Usage] = field(default_factory=dict)
    feedback: Feedback = field(default_factory=Feedback)
    incidents: list[Incident] | None = None  # None: this store records none

    def view(self) -> dict[str, Any]:
        u = self.usage
        fb = self.feedback
        sessions = u.sessions.count()
        interval = per_session(u.session_cost_usd, sessions)
        return {
            "route": self.route,
            "slos": [s.view() for s in self.slos],
            "met": sum(1 for s in self.slos if s.met is True),
            "missed": sum(1 for s in self.slos if s.met is False),
            "incidents": None if self.incidents is None else [i.view() for i in self.incidents],
            "kpis": {
                "requests": u.requests,
                "successful": u.successful,
                "cost_usd": round(u.cost_usd, 10),
                "cost_per_request_usd": _ratio(u.cost_usd, u.requests),
                "cost_per_successful_request_usd": _ratio(u.cost_usd, u.successful),
                "session_requests": u.session_requests,
                "session_cost_usd": round(u.session_cost_usd, 10),
                "sessions": sessions.view(),
                "cost_per_session_usd": None if interval is None else interval["usd"],
                "cost_per_session": interval,
                "csat": {
                    "rated": fb.rated,
                    "positive": fb.positive,
                    "share_positive": _ratio(fb.positive, fb.rated),
                    "escalated": fb.escalated,
                },
                "tokens_by_feature": [
                    {
                        "feature": name or None,
                        "requests": f.requests,
                        "input_tokens": f.input_tokens,
                        "output_tokens": f.output_tokens,
                        "cost_usd": round(f.cost_usd, 10),
                    }
                    for name, f in sorted(
                        self.by_feature.items(),
                        key=lambda kv: (-(kv[1].input_tokens + kv[1].output_tokens), kv[0]),
                    )
                ],
            },
        }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 10) if whole else None


@dataclass(frozen=True, slots=True)
class Report:
    month: Month
    routes: Sequence[RouteMonth]
    notes: tuple[str, ...]

    def view(self) -> dict[str, Any]:
        return {
            "month": self.month.label,
            "from": self.month.start.isoformat(),
            "to": self.month.end.isoformat(),
            "routes": [r.view() for r in self.routes],
            "notes": list(self.notes),
        }


def build_report(
    month: Month,
    slos: Iterable[SloMonth],
    usage: Mapping[str, Mapping[str, Usage]],
    feedback: Mapping[str, Feedback],
    incidents: Mapping[str, list[Incident]] | None,
) -> Report:
    """One section per route the SLOs select (`usage`: route -> feature -> sums; a route's
    key is "" for SLOs selecting none), in name order, the route-less ones last."""
    routes: dict[str | None, RouteMonth] = {}
    for s in slos:
        route = s.slo.selector.route
        section = routes.get(route)
        if section is None:
            section = routes[route] = RouteMonth(route)
        section.slos.append(s)
    for route, section in routes.items():
        key = route or ""
        for feature, sums in usage.get(key, {}).items():
            section.by_feature[feature] = sums
            section.usage.add(sums)
        section.feedback = feedback.get(key, Feedback())
        if incidents is not None:
            section.incidents = incidents.get(key, [])
        section.slos.sort(key=lambda s: (s.slo.name, s.scope))
    ordered = sorted(routes.values(), key=lambda r: (r.route is None, r.route or ""))
    notes = [SESSIONS_NOTE]
    if incidents is None:
        notes.append(INCIDENTS_NOT_RECORDED)
    return Report(month, ordered, tuple(notes))


# -- markdown -----------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 3) -> str:
    return "no data" if value is None else f"{value * 100:.{digits}f} %"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}"


def _per_session(kpis: Mapping[str, Any]) -> str:
    """`$0.012000 ($0.011800 to $0.012200; 1,234 sessions ±1.62 %)`, or `-`."""
    per = kpis["cost_per_session"]
    if per is None:
        return "-"
    n = kpis["sessions"]
    return (
        f"{_usd(per['usd'])} ({_usd(per['low_usd'])} to {_usd(per['high_usd'])}; "
        f"{n['estimate']:,.0f} sessions ±{n['relative_standard_error'] * 100:.2f} %)"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(view: Mapping[str, Any]) -> str:
    """The report (its JSON view) as markdown: a section per route."""
    lines = [f"# SLA report {view['month']}", ""]
    lines.append(f"From {view['from']} to {view['to']} (UTC, end excluded).")
    lines.append("")
    if not view["routes"]:
        lines += ["No SLOs.", ""]
    for r in view["routes"]:
        title = r["route"] if r["route"] is not None else "(SLOs selecting no route)"
        lines += [f"## {_cell(title)}", ""]
        lines.append(f"{r['met']} met, {r['missed']} missed of {len(r['slos'])} SLOs.")
        lines.append("")
        lines.append(
            "| SLO | SLI | objective | value | status | budget spent (requests) "
            "| budget spent (minutes) |"
        )
        lines.append("|---|---|---:|---:|---|---:|---:|")
        for s in r["slos"]:
            b = s["budget"]
            spent = "-" if b["spent_share"] is None else f"{b['spent_share'] * 100:.1f} %"
            lines.append(
                f"| {_cell(s['name'])} | {s['sli_kind']} | {s['objective'] * 100:g} % "
                f"| {_pct(s['sli'])} | {s['status']} "
                f"| {b['requests_spent']} of {b['requests_allowed']:.1f} ({spent}) "
                f"| {b['minutes_spent']} of {b['minutes_allowed']:.1f} |"
            )
        lines.append("")
        k = r["kpis"]
        csat = k["csat"]
        lines += [
            "| KPI | value |",
            "|---|---:|",
            f"| requests | {k['requests']} ({k['successful']} successful) |",
            f"| cost | {_usd(k['cost_usd'])} |",
            f"| cost per request | {_usd(k['cost_per_request_usd'])} |",
            f"| cost per successful request | {_usd(k['cost_per_successful_request_usd'])} |",
            f"| cost per session | {_per_session(k)} |",
            f"| CSAT (positive of rated) | {_pct(csat['share_positive'], 1)} "
            f"({csat['positive']} of {csat['rated']}; {csat['escalated']} escalated) |",
            "",
        ]
        if k["tokens_by_feature"]:
            lines += ["| feature | requests | input tokens | output tokens | cost |"]
            lines += ["|---|---:|---:|---:|---:|"]
            for f in k["tokens_by_feature"]:
                name = f["feature"] if f["feature"] is not None else "(none)"
                lines.append(
                    f"| {_cell(name)} | {f['requests']} | {f['input_tokens']} "
                    f"| {f['output_tokens']} | {_usd(f['cost_usd'])} |"
                )
            lines.append("")
        if r["incidents"] is not None:
            if r["incidents"]:
                lines.append("Incidents:")
                lines.append("")
                for i in r["incidents"]:
                    lines.append(
                        f"- {i['id']} (sev {i['severity']}, {i['type']}, {i['state']}): "
                        f"{_cell(i['title'])} — opened {i['opened_at']}"
                    )
            else:
                lines.append("Incidents: none.")
            lines.append("")
    for note in view["notes"]:
        lines.append(f"_Note: {note}._")
    return "\n".join(lines).rstrip() + "\n"
