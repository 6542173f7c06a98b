"""A rollout's forecast from its route's recent traffic (canary/forecast.py does the math)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trimtab.canary.forecast import Forecast, forecast
from trimtab.canary.plans import Plan
from trimtab.registry.scope import RouteKey
from trimtab.rollouts.arms import ArmReader

# the baseline: the stable version's last hour, or its last day when the hour is thin
SHORT, LONG = timedelta(hours=1), timedelta(days=1)
ENOUGH = 500  # requests in the last hour that make it the baseline


def route_forecast(
    reader: ArmReader,
    route: RouteKey,
    stable_version: int,
    plan: Plan,
    plan_name: str,
    now: datetime | None = None,
) -> Forecast:
    """What ``plan`` is expected to do on ``route``, from its stable version's recent
    traffic, if the candidate matches it."""
    now = now or datetime.now(UTC)
    window = SHORT
    baseline = reader.version(route, stable_version, now - window, now)
    if baseline.n < ENOUGH:
        window = LONG
        baseline = reader.version(route, stable_version, now - window, now)
    return forecast(plan, baseline, window.total_seconds(), plan_name=plan_name)
