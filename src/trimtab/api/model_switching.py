"""The incident containments `switch_model` and `restore_model` (gateway/switches.py).

A switch sends every request for a model to its `fallbacks:` on every gateway, until it
is restored; each writes its `model.switch` / `model.restore` audit row in the change's
transaction and refreshes this process's switches at once. Admin only: a model serves
every tenant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from trimtab.api.access import require_admin
from trimtab.api.errors import change
from trimtab.api.params import named_or_only
from trimtab.audit.log import Actor, AuditLog
from trimtab.config import ModelConfig
from trimtab.errors import Conflict, NotFound
from trimtab.gateway.switches import SwitchStore
from trimtab.incidents.store import Incident
from trimtab.types import Principal


class ModelSwitching:
    def __init__(
        self,
        store: SwitchStore,
        models: Mapping[str, ModelConfig],
        on_change: Callable[[], Awaitable[object]],
    ) -> None:
        self._store = store
        self._models = models
        self._changed = on_change

    def _model(self, incident: Incident, principal: Principal, body: dict[str, Any]) -> str:
        require_admin(principal, "switch a model (it serves every tenant)")
        name = named_or_only(body, "model", incident.models)
        if name not in self._models:
            known = ", ".join(sorted(self._models)) or "none"
            raise NotFound(f"no model '{name}' on this gateway (configured: {known})")
        return name

    async def switch(
        self, incident: Incident, principal: Principal, by: Actor, body: dict[str, Any],
        reason: str,
    ) -> dict[str, Any]:  # fmt: skip
        model = self._model(incident, principal, body)
        fallbacks = self._models[model].fallbacks
        if not fallbacks:
            raise Conflict(
                f"model '{model}' has no fallbacks: switching it would leave nothing to serve "
                "it (configure models.<name>.fallbacks, or roll the route back to a version "
                "on another model)",
                code="no_fallbacks",
            )

        def work() -> bool:
            with self._store.engine.begin() as conn:
                done = self._store.switch(conn, model, reason, by.name or None, incident.id)
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

        if not await change(work):
            raise Conflict(f"model '{model}' is switched to its fallbacks already",
                           code="already_switched")  # fmt: skip
        await self._changed()
        return {"model": model, "to": list(fallbacks)}

    async def restore(
        self, incident: Incident, principal: Principal, by: Actor, body: dict[str, Any],
        reason: str,
    ) -> dict[str, Any]:  # fmt: skip
        model = self._model(incident, principal, body)

        def work() -> str | None:
            with self._store.engine.begin() as conn:
                ended = self._store.restore(conn, model)
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

        switched_at = await change(work)
        if switched_at is None:
            raise Conflict(f"model '{model}' is not switched", code="not_switched")
        await self._changed()
        return {"model": model, "switched_at": switched_at}
