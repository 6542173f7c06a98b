"""Evidence on a route's versions (evals, red-team runs, approvals, changelogs): the
attestations the risk-tier gate reads, each also on the route's timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from trimtab.audit.log import Actor
from trimtab.canary.gates import Attestation
from trimtab.errors import Conflict
from trimtab.registry.scope import RouteKey
from trimtab.registry.timeline import append_event
from trimtab.rollouts.eval_evidence import EvalEvidence, RunLink, eval_evidence
from trimtab.rollouts.lookup import audit, route_row, version_row
from trimtab.store.tables import attestations, eval_attestations, eval_suites
from trimtab.types import SHARED


class AttestationStore:
    """The attestations table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def of(conn: Connection, route: RouteKey, version: int) -> list[Attestation]:
        """The version's attestations as the gate of the route's risk tier counts them
        (rollouts/eval_evidence.py: from tier 2 up, only run-backed evals)."""
        return list(AttestationStore.evidence(conn, route, version).attestations)

    @staticmethod
    def evidence(conn: Connection, route: RouteKey, version: int) -> EvalEvidence:
        a, e = attestations.c, eval_attestations.c
        rows = conn.execute(
            select(a.kind, a.result, a.by, e.run_id, e.suite, e.tags, e.dataset,
                   e.dataset_version, e.target_digest, e.verdict)
            .select_from(attestations.outerjoin(eval_attestations, e.attestation_id == a.id))
            .where(route.where(attestations), a.version == version)
            .order_by(a.id)
        ).all()  # fmt: skip
        pairs = [(Attestation(r.kind, r.result, r.by), _link(r)) for r in rows]
        tier = route_row(conn, route).risk_tier
        digest = version_row(conn, route, version).digest
        s = eval_suites.c
        scopes = {route.scope, SHARED}
        suites = {
            r.name: tuple(r.tags)
            for r in conn.execute(
                select(s.name, s.tags).where(s.route == route.name, s.scope.in_(scopes))
            )
        }
        return eval_evidence(tier, digest, pairs, suites)

    def attest_run(
        self, route: RouteKey, version: int, by: Actor, link: RunLink, baseline: str | None
    ) -> dict[str, Any]:
        """The version's `eval` attestation written from a run's gate verdict, linked to
        the run (`eval run --gate`)."""
        now = datetime.now(UTC)
        note = (
            f"eval run {link.run_id}: suite {link.suite} on {link.dataset} "
            f"v{link.dataset_version}: {link.verdict}"
        )
        detail = {
            "kind": "eval", "result": link.verdict, "url": None, "manual": False,
            "run_id": link.run_id, "baseline_run_id": baseline, "suite": link.suite,
            "tags": list(link.tags), "dataset": link.dataset,
            "dataset_version": link.dataset_version, "digest": link.target_digest,
        }  # fmt: skip
        with self.engine.begin() as conn:
            route_row(conn, route)
            row = version_row(conn, route, version)
            if row.digest != link.target_digest:
                raise Conflict(f"run {link.run_id} did not call v{version}'s digest")
            inserted = conn.execute(
                insert(attestations).values(
                    scope=route.scope, route=route.name, version=version, kind="eval",
                    result=link.verdict, by=by.name, note=note, url=None, at=now,
                )
            )  # fmt: skip
            (attestation_id,) = inserted.inserted_primary_key or (None,)
            conn.execute(
                insert(eval_attestations).values(
                    attestation_id=attestation_id, run_id=link.run_id, baseline_run_id=baseline,
                    suite=link.suite, tags=list(link.tags), dataset=link.dataset,
                    dataset_version=link.dataset_version, target_digest=link.target_digest,
                    verdict=link.verdict,
                )
            )  # fmt: skip
            append_event(
                conn, route, "attestation", version=version, actor=by.name, reason=note,
                detail=detail, at=now,
            )  # fmt: skip
            audit(conn, by, "version.attest", route, {**detail, "note": note})
        return {"route": route.name, "version": version, "by": by.name, **detail}

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
                detail={"kind": kind, "result": result, "url": url, "manual": True}, at=now,
            )  # fmt: skip
            audit(conn, by, "version.attest", route, {**out, "note": note, "url": url})
        return out


def _link(r: Any) -> RunLink | None:
    if r.run_id is None:
        return None  # a manual attestation
    return RunLink(
        r.run_id, r.suite, tuple(r.tags), r.dataset, r.dataset_version, r.target_digest, r.verdict
    )
