"""Releases over HTTP: rollouts, manual moves, rollback, attestations and feedback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, get_args

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import actor, json_response
from trimtab.api.endpoints import (
    ATTEST,
    FEEDBACK,
    MOVE_ROLLOUT,
    MOVES,
    ROLLBACK,
    ROLLOUT_FORECAST,
    ROLLOUT_PLAN,
    ROLLOUT_STATUS,
    ROUTE,
    ROUTE_TENANT,
    START_ROLLOUT,
)
from trimtab.api.errors import change
from trimtab.api.models import URL_CHARS, AttestationKind
from trimtab.api.params import bad_param, text_field
from trimtab.api.routes import acted_by
from trimtab.api.schema import parse_version
from trimtab.audit.log import Actor
from trimtab.auth.keyring import KeyRing, require_role
from trimtab.canary.plans import BUILTIN_PLANS, Plan
from trimtab.errors import Conflict, Forbidden, NotFound
from trimtab.registry.scope import RouteKey
from trimtab.registry.store import RouteStore
from trimtab.rollouts.row import RolloutRow
from trimtab.rollouts.store import RolloutStore
from trimtab.types import MODEL_CALLERS, OPERATORS, READERS, Principal, new_request_id

KINDS: tuple[str, ...] = get_args(AttestationKind)
# the fields each body may have are its declaration's (api/endpoints.py): anything else is
# a 400 naming it, as for keys and apply


def _text(data: dict[str, Any], name: str, required: bool = False) -> str | None:
    return text_field(data, name, required=required)  # at most params.MAX_TEXT characters


class RolloutsAPI:
    def __init__(
        self,
        store: RolloutStore,
        routes: RouteStore,
        keys: KeyRing,
        plans: Mapping[str, Plan],
        on_change: Callable[[], Awaitable[object]],
    ) -> None:
        self._store = store
        self._routes = routes
        self._keys = keys
        self._plans = {**BUILTIN_PLANS, **plans}
        self._changed = on_change

    def routes(self) -> list[Route]:
        return [
            START_ROLLOUT.route(self.start),
            ROLLOUT_STATUS.route(self.status),
            ROLLOUT_FORECAST.route(self.forecast),
            MOVE_ROLLOUT.route(self.move),
            ROLLBACK.route(self.rollback),
            ATTEST.route(self.attest),
            FEEDBACK.route(self.feedback),
        ]

    async def _route(
        self, request: Request, allowed: frozenset[str], action: str
    ) -> tuple[Principal, RouteKey]:
        """The caller and the route it means (api/routes.py: its tenant's, else shared;
        `?tenant=`); a route of another tenant answers 404, as if it did not exist."""
        principal = self._keys.authenticate(request.headers)
        require_role(principal, allowed, action)
        name, asked = ROUTE.of(request), ROUTE_TENANT.of(request)
        row = await run_in_threadpool(
            self._routes.resolve, name, principal.tenant, principal.is_admin, asked
        )
        if row is None:
            raise NotFound(f"no route '{name}'")
        if allowed is OPERATORS and not (principal.is_admin or row.tenant is not None):
            raise Forbidden(f"route '{name}' is shared: only an admin may {action}")
        return principal, row.key

    async def _done(self) -> None:
        await self._changed()  # this process serves the change from the next request on

    async def start(self, request: Request) -> Response:
        rid = new_request_id()
        principal, route = await self._route(request, OPERATORS, "start rollouts")
        data = await START_ROLLOUT.json(request)
        to = parse_version("to", str(data.get("to") or ""))
        if to is None:
            raise bad_param("to", "is required (the candidate version, e.g. v2)")
        plan_name = _text(data, "plan") or "default"
        plan = self._plan(plan_name)
        by = actor(request, principal, rid)
        ro = await change(self._store.start, route, to, plan_name, plan, by, _text(data, "reason"))
        await self._done()
        view = ro.view()
        # said at the start: how long each stage should take on this route's traffic, and
        # whether the plan can decide within its durations at all
        forecast = await run_in_threadpool(self._store.forecast, route, plan, plan_name)
        view["forecast"] = forecast.view()
        return json_response(view, 201, rid)

    def _plan(self, name: str) -> Plan:
        plan = self._plans.get(name)
        if plan is None:
            known = ", ".join(sorted(self._plans))
            raise bad_param("plan", f"unknown plan '{name}' (known: {known})")
        return plan

    async def forecast(self, request: Request) -> Response:
        _, route = await self._route(request, READERS, "read rollouts")
        name = ROLLOUT_PLAN.of(request) or "default"
        plan = self._plan(name)
        found = await run_in_threadpool(self._store.forecast, route, plan, name)
        return json_response(found.view())

    async def status(self, request: Request) -> Response:
        _, route = await self._route(request, READERS, "read rollouts")
        ro = await run_in_threadpool(self._store.latest, route)
        if ro is None:
            raise NotFound("this route has had no rollout")
        return json_response(ro.view())

    async def move(self, request: Request) -> Response:
        rid = new_request_id()
        move = MOVE_ROLLOUT.arg(request, "move")
        if move not in MOVES:
            raise NotFound(f"no rollout action '{move}'")
        principal, route = await self._route(request, OPERATORS, f"{move} rollouts")
        body = await MOVE_ROLLOUT.json(request)
        reason = _text(body, "reason", required=True)
        ro = await run_in_threadpool(self._store.current, route)
        if ro is None:
            raise Conflict(f"route '{route.name}' has no rollout in progress")
        by = actor(request, principal, rid)
        ok = await change(self._apply_move, ro, move, by, reason)
        if not ok:
            raise Conflict(f"cannot {move} the rollout: it is {ro.status}")
        await self._done()
        latest = await run_in_threadpool(self._store.latest, route)
        assert latest is not None
        return json_response(latest.view(), 200, rid)

    def _apply_move(self, ro: RolloutRow, move: str, by: Actor, reason: str | None) -> bool:
        if move == "pause":
            return self._store.set_paused(ro, True, by, reason)
        if move == "resume":
            return self._store.set_paused(ro, False, by, reason)
        status = "promoted" if move == "promote" else "aborted"
        return self._store.finish(ro, status, by, reason)

    async def rollback(self, request: Request) -> Response:
        rid = new_request_id()
        principal, route = await self._route(request, OPERATORS, "roll back")
        data = await ROLLBACK.json(request)
        to = parse_version("to", str(data.get("to") or ""))
        reason = _text(data, "reason", required=True)
        override = data.get("override_gate", False)
        if not isinstance(override, bool):
            raise bad_param("override_gate", "must be a boolean")
        if override and not principal.is_admin:
            raise Forbidden(
                "only a key with role 'admin' may override the release gate; "
                f"this key has role '{principal.role}'",
            )
        by = actor(request, principal, rid)

        def work() -> tuple[int, bool]:
            return self._store.rollback(route, to, by, reason, override_gate=override)

        target, overridden = await change(work)
        await self._done()
        return json_response(
            {"route": route.name, "stable_version": target, "override_gate": overridden},
            200,
            rid,
        )

    async def attest(self, request: Request) -> Response:
        rid = new_request_id()
        principal, route = await self._route(request, OPERATORS, "attest versions")
        data = await ATTEST.json(request)
        kind = _text(data, "kind", required=True)
        if kind not in KINDS:
            raise bad_param("kind", f"'{kind}' is not one of {', '.join(KINDS)}")
        result = _text(data, "result", required=True)
        if result not in ("pass", "fail"):
            raise bad_param("result", "must be pass or fail")
        version = ATTEST.arg(request, "version")
        assert version is not None
        if not acted_by(principal):
            raise Forbidden("attestations need a key with an owner")
        by = actor(request, principal, rid)
        out = await change(
            self._store.attestations.attest, route, version, kind, result, by,
            _text(data, "note"), text_field(data, "url", limit=URL_CHARS),
        )  # fmt: skip
        await self._done()
        return json_response(out, 201, rid)

    async def feedback(self, request: Request) -> Response:
        rid = new_request_id()
        principal = self._keys.authenticate(request.headers)
        require_role(principal, MODEL_CALLERS | READERS, "send feedback")
        data = await FEEDBACK.json(request)
        request_id = _text(data, "request_id", required=True)
        assert request_id is not None
        score = _score(data)
        escalated = data.get("escalated", False)
        if not isinstance(escalated, bool):
            raise bad_param("escalated", "must be a boolean")
        tenant = None if principal.is_admin else principal.tenant
        out = await change(
            self._store.feedback.add, request_id, tenant, score, _text(data, "comment"),
            escalated, actor(request, principal, rid),
        )  # fmt: skip
        return json_response(out, 201, rid)


def _score(data: dict[str, Any]) -> float:
    """`score` 0..1, or `thumbs` up/down."""
    thumbs = data.get("thumbs")
    if thumbs is not None:
        if thumbs not in ("up", "down"):
            raise bad_param("thumbs", "must be 'up' or 'down'")
        return 1.0 if thumbs == "up" else 0.0
    score = data.get("score")
    if score == "up" or score == "down":
        return 1.0 if score == "up" else 0.0
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise bad_param("score", "must be a number from 0 to 1, or thumbs: up|down")
    return float(score)
