"""Evidence on a route's versions (evals, red-team runs, approvals, changelogs): the
attestations the risk-tier gate reads, each also on the route's timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from trimtab.audit.log import Actor
from trimtab.canary.gates import Attestation
from trimtab.registry.scope import RouteKey
from trimtab.registry.timeline import append_event
from trimtab.rollouts.lookup import audit, route_row, version_row
from trimtab.store.tables import attestations


class AttestationStore:
    """The attestations table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def of(conn: Connection, route: RouteKey, version: int) -> list[Attestation]:
        a = attestations.c
        rows = conn.execute(
            select(a.kind, a.result, a.by)
            .where(route.where(attestations), a.version == version)
            .order_by(a.id)
        ).all()
        return [Attestation(r.kind, r.result, r.by) for r in rows]

    def attest(
        self,
        route: RouteKey,
        version: int,
        kind: str,
        result: str,
        by: Actor,
        note: str | None,
        url: str | None,
    ) -> dict[str, Any]:
        """Record evidence on a version, attributed to `by`."""
        now = datetime.now(UTC)
        out = {
            "route": route.name,
            "version": version,
            "kind": kind,
            "result": result,
            "by": by.name,
        }
        with self.engine.begin() as conn:
            route_row(conn, route)
            version_row(conn, route, version)
            conn.execute(
                insert(attestations).values(
                    scope=route.scope, route=route.name, version=version, kind=kind,
                    result=result, by=by.name, note=note, url=url, at=now,
                )
            )  # fmt: skip
            append_event(
                conn, route, "attestation", version=version, actor=by.name, reason=note,
                detail={"kind": kind, "result": result, "url": url}, at=now,
            )  # fmt: skip
            audit(conn, by, "version.attest", route, {**out, "note": note, "url": url})
        return out
