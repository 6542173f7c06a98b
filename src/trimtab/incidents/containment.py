"""Containment: what a responder does from an incident to stop the harm, the one
implementation the API (api/incidents.py) and the console (web/incidents.py) both call.

Each action is done through the store that owns what it changes — the rollback and pause
of the rollouts store, the revocation of the key store, the model switch of the gateway's
switch store — with that store's own audit row in its transaction, and then recorded on
the incident (`IncidentStore.record_action`: the timeline event, the `incident.contain`
audit row, an open incident marked mitigated). Who may: the caller checks the incident's
scope; this module checks what each action needs beyond it (a tenant's own route unless
an admin; an admin for keys, tenants and models).

The gateway sits above this package, so its switch store is reached through the small
protocol `Switches` (gateway/switches.SwitchStore satisfies it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from trimtab.audit.log import Actor, AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.auth.store import KeyRow, KeyStore, stored_key
from trimtab.config import ModelConfig
from trimtab.errors import Conflict, Forbidden, Invalid, NotFound
from trimtab.incidents.records import Event, Incident
from trimtab.incidents.store import IncidentStore
from trimtab.registry.scope import RouteKey
from trimtab.registry.store import RouteStore
from trimtab.rollouts.store import RolloutStore
from trimtab.types import Principal

T = TypeVar("T")

ROUTE_ACTIONS = ("rollback", "pause_rollout")
KEY_ACTIONS = ("revoke_key", "block_tenant")
MODEL_ACTIONS = ("switch_model", "restore_model")
CONTAINMENTS = (*ROUTE_ACTIONS, *KEY_ACTIONS, *MODEL_ACTIONS)


class Asked(Protocol):
    """The caller's fields, read when an action needs them (a JSON body, a form), so each
    refusal comes in the order the action checks."""

    def text(self, name: str, *, required: bool = False) -> str | None: ...

    def version(self, name: str) -> int | None: ...


class Run(Protocol):
    """Runs a store change off the event loop (the API's `change`, `asyncio.to_thread`)."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


class Switched(Protocol):
    @property
    def created_at(self) -> datetime: ...


class Switches(Protocol):
    """The `model_switches` rows (gateway/switches.SwitchStore): writes in the caller's
    connection, so the audit row commits with the change."""

    engine: Engine

    def switch(
        self, conn: Connection, model: str, reason: str, actor: str | None,
        incident_id: str | None,
    ) -> object | None: ...  # fmt: skip

    def restore(self, conn: Connection, model: str) -> Switched | None: ...


@dataclass(frozen=True, slots=True)
class Contained:
    """What an action did (the API's `result`) and its event on the incident's timeline."""

    result: dict[str, Any]
    event: Event


def invalid(name: str, message: str) -> Invalid:
    return Invalid(f"{name}: {message}", code="invalid_parameter", param=name)


def named_or_only(given: str | None, name: str, named: Sequence[str]) -> str:
    """The name the caller gave, or else the one value `named` holds (an incident's only
    route or model); a 400 that says how many there are otherwise."""
    if given is not None:
        return given
    if len(named) != 1:
        raise invalid(
            name,
            "is required: the incident names "
            + (f"{len(named)} {name}s" if named else f"no {name}"),
        )
    return named[0]


def _required(asked: Asked, name: str) -> str:
    value = asked.text(name, required=True)
    assert value is not None  # required: a 400 before it is None
    return value


def _admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(
            f"only a key with role 'admin' may {action}; this key has role '{principal.role}'"
        )


class Containment:
    """The containment actions over the stores that own what they change. `on_route_change`
    and `on_switch_change` refresh this process's route table and model switches at once
    (the other processes within their refresh)."""

    def __init__(
        self,
        incidents: IncidentStore,
        routes: RouteStore,
        rollouts: RolloutStore,
        keys: KeyStore,
        ring: KeyRing,
        on_route_change: Callable[[], Awaitable[object]],
        switches: Switches | None = None,
        models: Mapping[str, ModelConfig] | None = None,
        on_switch_change: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._incidents = incidents
        self._routes = routes
        self._rollouts = rollouts
        self._keys = keys
        self._ring = ring
        self._route_changed = on_route_change
        self._switches = switches
        self._models = models or {}
        self._switch_changed = on_switch_change

    async def contain(
        self,
        action: str,
        incident: Incident,
        principal: Principal,
        by: Actor,
        asked: Asked,
        message: str | None,
        run: Run,
    ) -> Contained:
        """Do `action` (one of CONTAINMENTS) and record it on the incident."""
        reason = message or f"containment of incident {incident.id}"
        if action in ROUTE_ACTIONS:
            result = await self._route_action(action, incident, principal, by, asked, reason, run)
        elif action in MODEL_ACTIONS:
            result = await self._model_action(action, incident, principal, by, asked, reason, run)
        elif action == "revoke_key":
            result = await self._revoke_key(incident, principal, by, asked, run)
        elif action == "block_tenant":
            result = await self._block_tenant(incident, principal, by, asked, run)
        else:
            raise invalid("action", f"{action!r} is not one of {', '.join(CONTAINMENTS)}")
        detail = dict(result)
        event = await run(
            lambda: self._incidents.record_action(
                incident.id, action, by, message, detail, mitigates=True
            )
        )
        return Contained(result, event)

    # -- routes --------------------------------------------------------------------------

    async def _route_key(
        self, incident: Incident, principal: Principal, asked: Asked, action: str, run: Run
    ) -> RouteKey:
        name = named_or_only(asked.text("route"), "route", incident.routes)
        row = await run(lambda: self._routes.resolve(name, principal.tenant, principal.is_admin))
        if row is None:
            raise NotFound(f"no route '{name}'")
        if not (principal.is_admin or row.tenant is not None):
            raise Forbidden(f"route '{name}' is shared: only an admin may {action}")
        return row.key

    async def _route_action(
        self, action: str, incident: Incident, principal: Principal, by: Actor, asked: Asked,
        reason: str, run: Run,
    ) -> dict[str, Any]:  # fmt: skip
        if action == "rollback":
            key = await self._route_key(incident, principal, asked, "roll back", run)
            to = asked.version("to")
            target, _ = await run(lambda: self._rollouts.rollback(key, to, by, reason))
            await self._route_changed()
            return {"route": key.name, "stable_version": target}
        key = await self._route_key(incident, principal, asked, "pause rollouts", run)
        ro = await run(lambda: self._rollouts.current(key))
        if ro is None:
            raise Conflict(f"route '{key.name}' has no rollout in progress")
        ok = await run(lambda: self._rollouts.set_paused(ro, True, by, reason))
        if not ok:
            raise Conflict(f"cannot pause the rollout {ro.id}: it is {ro.status}")
        await self._route_changed()
        return {"route": key.name, "rollout": ro.id, "version": ro.candidate_version}

    # -- keys ----------------------------------------------------------------------------

    async def _revoke_key(
        self, incident: Incident, principal: Principal, by: Actor, asked: Asked, run: Run
    ) -> dict[str, Any]:
        _admin(principal, "revoke keys")
        key_id = _required(asked, "key_id")
        rows = await self._revoke([key_id], by, incident, run)
        if not rows:
            existing = await run(lambda: self._keys.get(key_id))
            if existing is None:
                raise NotFound(f"no key with id '{key_id}'")
            raise Conflict(f"key '{key_id}' is already revoked", code="already_revoked")
        return {"key_id": key_id, "tenant": rows[0].tenant}

    async def _block_tenant(
        self, incident: Incident, principal: Principal, by: Actor, asked: Asked, run: Run
    ) -> dict[str, Any]:
        _admin(principal, "block a tenant's keys")
        tenant = _required(asked, "tenant")
        keys = await run(lambda: self._keys.list_keys(tenant))
        live = [k.id for k in keys if k.revoked_at is None]
        rows = await self._revoke(live, by, incident, run)
        left = sorted(p.key_id or "" for p in self._ring.config_keys() if p.tenant == tenant)
        if not rows and not left:
            raise Conflict(f"tenant '{tenant}' has no key that is not revoked already")
        return {
            "tenant": tenant,
            "revoked": len(rows),
            "key_ids": [r.id for r in rows],
            # keys of the configuration file: only removing them from it and restarting ends them
            "config_keys_left": left,
        }

    async def _revoke(
        self, key_ids: list[str], by: Actor, incident: Incident, run: Run
    ) -> list[KeyRow]:
        """Revoke keys as api/keys.py does (the key.revoke audit row in the revocation's
        transaction; the ring told at once); a key already revoked is skipped."""
        for key_id in key_ids:
            if self._ring.is_config_key(key_id):
                raise Conflict(
                    f"key '{key_id}' comes from the configuration file and cannot be revoked "
                    "through the API; remove it from the 'keys' list and restart",
                    code="config_key",
                )

        def work() -> list[tuple[str, KeyRow]]:
            done = []
            with self._keys.engine.begin() as conn:
                for key_id in key_ids:
                    revoked = self._keys.revoke(conn, key_id, by.name or None)
                    if revoked is None:
                        continue
                    _, row = revoked
                    AuditLog.write(
                        conn,
                        by.event(
                            "key.revoke", target=key_id, tenant=row.tenant,
                            detail={"role": row.role, "owner": row.owner, "name": row.name,
                                    "incident": incident.id},
                        ),
                    )  # fmt: skip
                    done.append(revoked)
            return done

        done = await run(work)
        for digest, row in done:
            self._ring.put(digest, stored_key(row))
        return [row for _, row in done]

    # -- models --------------------------------------------------------------------------

    def _model(self, incident: Incident, principal: Principal, asked: Asked) -> str:
        _admin(principal, "switch a model (it serves every tenant)")
        name = named_or_only(asked.text("model"), "model", incident.models)
        if name not in self._models:
            known = ", ".join(sorted(self._models)) or "none"
            raise NotFound(f"no model '{name}' on this gateway (configured: {known})")
        return name

    async def _model_action(
        self, action: str, incident: Incident, principal: Principal, by: Actor, asked: Asked,
        reason: str, run: Run,
    ) -> dict[str, Any]:  # fmt: skip
        """switch_model sends every request for a model to its `fallbacks:` on every
        gateway until restore_model ends it; each writes its `model.switch` /
        `model.restore` audit row in the change's transaction."""
        switches = self._switches
        if switches is None:
            raise Conflict("this gateway cannot switch models", code="no_switching")
        model = self._model(incident, principal, asked)
        if action == "switch_model":
            result = await self._switch(switches, model, incident, by, reason, run)
        else:
            result = await self._restore(switches, model, incident, by, reason, run)
        if self._switch_changed is not None:
            await self._switch_changed()
        return result

    async def _switch(
        self, switches: Switches, model: str, incident: Incident, by: Actor, reason: str,
        run: Run,
    ) -> dict[str, Any]:  # fmt: skip
        fallbacks = self._models[model].fallbacks
        if not fallbacks:
            raise Conflict(
                f"model '{model}' has no fallbacks: switching it would leave nothing to serve "
                "it (configure models.<name>.fallbacks, or roll the route back to a version "
                "on another model)",
                code="no_fallbacks",
            )

        def work() -> bool:
            with switches.engine.begin() as conn:
                done = switches.switch(conn, model, reason, by.name or None, incident.id)
                if done is not None:
                    AuditLog.write(
                        conn,
                        by.event(
                            "model.switch", target=model,
                            detail={"to": list(fallbacks), "incident": incident.id,
                                    "reason": reason},
                        ),
                    )  # fmt: skip
                return done is not None

        if not await run(work):
            raise Conflict(f"model '{model}' is switched to its fallbacks already",
                           code="already_switched")  # fmt: skip
        return {"model": model, "to": list(fallbacks)}

    async def _restore(
        self, switches: Switches, model: str, incident: Incident, by: Actor, reason: str,
        run: Run,
    ) -> dict[str, Any]:  # fmt: skip
        def work() -> str | None:
            with switches.engine.begin() as conn:
                ended = switches.restore(conn, model)
                if ended is not None:
                    AuditLog.write(
                        conn,
                        by.event(
                            "model.restore", target=model,
                            detail={"incident": incident.id, "reason": reason,
                                    "switched_at": ended.created_at.isoformat()},
                        ),
                    )  # fmt: skip
                return ended.created_at.isoformat() if ended is not None else None

        switched_at = await run(work)
        if switched_at is None:
            raise Conflict(f"model '{model}' is not switched", code="not_switched")
        return {"model": model, "switched_at": switched_at}
