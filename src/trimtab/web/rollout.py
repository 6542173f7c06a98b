"""/ui/routes/{name}/rollout: the latest rollout's stage, split, per-metric evidence and
decision; start, pause, resume, promote, abort and roll back for operators, each with a
confirmation and a reason, through the store functions the API's handlers call (the
store writes the timeline and the audit row in the change's transaction)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.responses import RedirectResponse, Response

from trimtab.canary.plans import BUILTIN_PLANS
from trimtab.errors import Conflict, Forbidden, Invalid, NotFound
from trimtab.registry.rows import RouteRow
from trimtab.types import Principal
from trimtab.web.context import Page
from trimtab.web.routes import resolve

MOVES = ("pause", "resume", "promote", "abort")
LIVE_S = 5  # while a rollout runs, its page re-reads the latest decision this often
REASON_CHARS = 2000


def interval_bar(m: dict[str, Any]) -> dict[str, float] | None:
    """Where the interval, the estimate and the margin fall on a 0..100 axis."""
    values = [m.get(k) for k in ("lower", "upper", "margin", "estimate")]
    finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if len(finite) < 2:
        return None
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad

    def at(v: Any) -> float:
        if not isinstance(v, int | float) or not math.isfinite(v):
            return 0.0 if v is not None and v < 0 else 100.0
        return round((float(v) - lo) / (hi - lo) * 100, 2)

    return {"lower": at(m.get("lower")), "upper": at(m.get("upper")),
            "margin": at(m.get("margin")), "estimate": at(m.get("estimate"))}  # fmt: skip


def _plans(page: Page) -> dict[str, Any]:
    return {**BUILTIN_PLANS, **page.deps.plans}


async def page(page: Page) -> Response:
    row = await resolve(page)
    ro = await asyncio.to_thread(page.deps.rollouts.latest, row.key)
    versions = await asyncio.to_thread(page.deps.routes.versions, row.key)
    view = ro.view() if ro is not None else None
    metrics = []
    if view is not None and view.get("last_decision"):
        for m in view["last_decision"].get("metrics") or []:
            metrics.append({**m, "bar": interval_bar(m)})
    return page.render(
        "rollout.html.j2", route=row, ro=view, metrics=metrics, versions=versions,
        plans=sorted(_plans(page)), active=ro is not None and ro.status in ("running", "paused"),
        moves=MOVES, may_change=_may_change(page.viewer.principal, row), live_s=LIVE_S,
    )  # fmt: skip


def _may_change(p: Principal, row: RouteRow) -> bool:
    """The API's rule: operators and admins; a shared route only an admin."""
    return p.role in ("operator", "admin") and (p.is_admin or row.tenant is not None)


async def _changing(page: Page, action: str) -> tuple[RouteRow, str]:
    page.viewer.require_operator(action)
    row = await resolve(page)
    if not _may_change(page.viewer.principal, row):
        raise Forbidden(f"route '{row.name}' is shared: only an admin may {action}")
    if page.form.get("confirm") != "yes":
        raise Invalid("tick the confirmation box to " + action, param="confirm")
    reason = page.field("reason", required=True)
    assert reason is not None
    if len(reason) > REASON_CHARS:
        raise Invalid(f"'reason' must be at most {REASON_CHARS} characters", param="reason")
    return row, reason


def _back(page: Page, row: RouteRow) -> Response:
    back = f"/ui/routes/{row.name}/rollout"
    if row.tenant is not None and page.viewer.is_admin:
        back += f"?tenant={row.tenant}"
    return RedirectResponse(back, 303)


async def start(page: Page) -> Response:
    row, reason = await _changing(page, "start rollouts")
    to = page.field("to", required=True)
    assert to is not None
    digits = to[1:] if to[:1] in ("v", "V") else to
    if not digits.isdigit():
        raise Invalid(f"'to' must be a version like v2, got '{to}'", param="to")
    plan_name = page.field("plan") or "default"
    plan = _plans(page).get(plan_name)
    if plan is None:
        raise Invalid(f"unknown plan '{plan_name}'", param="plan")
    by = page.actor()
    store = page.deps.rollouts
    await asyncio.to_thread(store.start, row.key, int(digits), plan_name, plan, by, reason)
    await page.deps.on_change()
    return _back(page, row)


async def move(page: Page) -> Response:
    name = page.request.path_params["move"]
    if name not in MOVES:
        raise NotFound(f"no rollout action '{name}'")
    row, reason = await _changing(page, f"{name} rollouts")
    store = page.deps.rollouts
    ro = await asyncio.to_thread(store.current, row.key)
    if ro is None:
        raise Conflict(f"route '{row.name}' has no rollout in progress")
    by = page.actor()
    if name in ("pause", "resume"):
        ok = await asyncio.to_thread(store.set_paused, ro, name == "pause", by, reason)
    else:
        status = "promoted" if name == "promote" else "aborted"
        ok = await asyncio.to_thread(store.finish, ro, status, by, reason)
    if not ok:
        raise Conflict(f"cannot {name} the rollout: it is {ro.status}")
    await page.deps.on_change()
    return _back(page, row)


async def rollback(page: Page) -> Response:
    row, reason = await _changing(page, "roll back")
    to = page.field("to")
    number: int | None = None
    if to is not None:
        digits = to[1:] if to[:1] in ("v", "V") else to
        if not digits.isdigit():
            raise Invalid(f"'to' must be a version like v1, got '{to}'", param="to")
        number = int(digits)
    by = page.actor()
    await asyncio.to_thread(page.deps.rollouts.rollback, row.key, number, by, reason)
    await page.deps.on_change()
    return _back(page, row)
