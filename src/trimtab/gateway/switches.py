"""Models switched to their fallbacks at run time: an incident's containment.

A row of `model_switches` says "skip this model, serve its `fallbacks:`" (docs/incidents.md,
Containment). Every gateway reads the rows every `refresh_s` (`SwitchCache`, a Refresher
like the key and route caches) and installs them in its catalog, whose plan for a switched
model starts at the first fallback: a set lookup per request. The process that switches
refreshes at once; the others within `refresh_s`. Only a model with fallbacks can be
switched, so a switch never leaves a model with nothing to serve it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from trimtab.gateway.catalog import Catalog
from trimtab.refresher import Refresher
from trimtab.store.engine import as_utc
from trimtab.store.tables import model_switches


@dataclass(frozen=True, slots=True)
class Switch:
    model: str
    reason: str
    actor: str | None
    incident_id: str | None
    created_at: datetime

    def view(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reason": self.reason,
            "actor": self.actor,
            "incident_id": self.incident_id,
            "created_at": self.created_at.isoformat(),
        }


def _switch(row: Any) -> Switch:
    return Switch(row.model, row.reason, row.actor, row.incident_id, as_utc(row.created_at))


class SwitchStore:
    """The `model_switches` rows; writes take the caller's connection, so an audit row
    commits with the change."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self) -> list[Switch]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(model_switches).order_by(model_switches.c.model))
            return [_switch(r) for r in rows]

    def switch(
        self,
        conn: Connection,
        model: str,
        reason: str,
        actor: str | None,
        incident_id: str | None,
    ) -> Switch | None:
        """Switch the model; None when it is switched already (two switching it at the
        same moment: the second's insert fails on the key, and its transaction with it)."""
        taken = conn.execute(
            select(model_switches.c.model).where(model_switches.c.model == model)
        ).first()
        if taken is not None:
            return None
        row = Switch(model, reason, actor, incident_id, datetime.now(UTC))
        conn.execute(
            insert(model_switches).values(
                model=model,
                reason=reason,
                actor=actor,
                incident_id=incident_id,
                created_at=row.created_at,
            )
        )
        return row

    def restore(self, conn: Connection, model: str) -> Switch | None:
        """End the model's switch; the switch that ended, None when there was none."""
        found = conn.execute(select(model_switches).where(model_switches.c.model == model)).first()
        if found is None:
            return None
        conn.execute(delete(model_switches).where(model_switches.c.model == model))
        return _switch(found)


class SwitchCache(Refresher):
    """Keeps the catalog's switched models in step with the store."""

    def __init__(self, store: SwitchStore, catalog: Catalog, *, refresh_s: float = 1.0) -> None:
        super().__init__("model switch store", refresh_s)
        self._store = store
        self._catalog = catalog

    async def reload(self) -> None:
        switches = await asyncio.to_thread(self._store.list)
        self._catalog.install_switches(frozenset(s.model for s in switches))
