"""An SLO's status at a moment: its SLI over the window, its error budget and each alert
rule's verdict, from its per-minute counts (pure; `read_status` reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine

from trimtab.slo.burn import (
    CONFIDENCE,
    METHOD,
    Budget,
    Burn,
    Counts,
    RuleVerdict,
    Severity,
    budget,
    judge,
    sli,
)
from trimtab.slo.kinds import notes
from trimtab.slo.rollups import Series, read_windows, window_counts
from trimtab.slo.spec import SloDefinition

Standing = Literal["no_data", "meeting", "missing"]


@dataclass(frozen=True, slots=True)
class SloStatus:
    slo: SloDefinition
    at: datetime
    counts: Counts  # over the SLO window
    value: float | None  # the SLI; None: no data
    budget: Budget
    rules: tuple[RuleVerdict, ...]

    @property
    def standing(self) -> Standing:
        if self.value is None:
            return "no_data"
        return "meeting" if self.value >= self.slo.objective else "missing"

    @property
    def firing(self) -> Severity | None:
        """The gravest severity of the rules that fire."""
        fired = {v.rule.severity for v in self.rules if v.state == "firing"}
        return "page" if "page" in fired else "ticket" if fired else None

    def burns(self) -> dict[int, Burn]:
        """The burn over each alert window, by its length in minutes."""
        out: dict[int, Burn] = {}
        for v in self.rules:
            out.setdefault(v.long.minutes, v.long)
            out.setdefault(v.short.minutes, v.short)
        return dict(sorted(out.items()))

    def view(self, tenant: str | None) -> dict[str, Any]:
        d = self.slo
        return {
            "name": d.name,
            "tenant": tenant,
            "definition": d.to_json(),
            "at": self.at.isoformat(),
            "standing": self.standing,
            "sli": self.value,
            "objective": d.objective,
            "window": d.window,
            "good": self.counts.good,
            "valid": self.counts.valid,
            "bad": self.counts.bad,
            "budget": {
                "total": self.budget.total,
                "spent": self.budget.spent,
                "remaining": self.budget.remaining,
                "spent_share": self.budget.spent_share,
                "remaining_share": self.budget.remaining_share,
            },
            "firing": self.firing,
            "alerts": [_rule_view(v) for v in self.rules],
            "notes": notes(d.sli),
        }


def minutes_label(minutes: int) -> str:
    """`5m`, `1h`, `3d`: the largest unit that divides the span."""
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _burn_view(b: Burn) -> dict[str, Any]:
    return {
        "window": minutes_label(b.minutes),
        "minutes": b.minutes,
        "good": b.counts.good,
        "valid": b.counts.valid,
        "bad": b.counts.bad,
        "burn": b.rate,
        "low": b.low,
        "high": b.high,
        "enough": b.enough,
    }


def _rule_view(v: RuleVerdict) -> dict[str, Any]:
    r = v.rule
    return {
        "severity": r.severity,
        "long": minutes_label(r.long_minutes),
        "short": minutes_label(r.short_minutes),
        "factor": r.factor,
        "state": v.state,
        "min_events": v.long.min_events,
        "method": METHOD,
        "confidence": CONFIDENCE,
        "long_window": _burn_view(v.long),
        "short_window": _burn_view(v.short),
    }


def evaluate(slo: SloDefinition, series: Series, now: datetime) -> SloStatus:
    """The status from the SLO's counts per minute (at least its window's minutes)."""
    spans = {slo.window_minutes, *(m for r in slo.rules for m in (r.long_minutes, r.short_minutes))}
    return judged(slo, {w: window_counts(series, now, w) for w in spans}, now)


def judged(slo: SloDefinition, windows: Mapping[int, Counts], now: datetime) -> SloStatus:
    """The status from the SLO's counts over its window and each rule's two windows."""
    counts = windows[slo.window_minutes]
    verdicts = tuple(
        judge(
            rule,
            windows[rule.long_minutes],
            windows[rule.short_minutes],
            slo.objective,
            slo.min_events,
        )
        for rule in slo.rules
    )
    return SloStatus(slo, now, counts, sli(counts), budget(counts, slo.objective), verdicts)


def read_status(engine: Engine, slo: SloDefinition, now: datetime) -> SloStatus:
    """The status at `now`, from the rollups of the SLO's window."""
    spans = {slo.window_minutes, *(m for r in slo.rules for m in (r.long_minutes, r.short_minutes))}
    return judged(slo, read_windows(engine, slo, now, spans), now)
