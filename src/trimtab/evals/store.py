"""Datasets in the store: named per tenant, immutable versions, each item's content once.

Pushing the same items as the newest version creates nothing. A push commits with its
audit row in one transaction (`audit.log.AuditLog.write`), or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.audit.log import Actor, AuditLog
from trimtab.errors import NotFound
from trimtab.evals.datasets import Item, dataset_digest
from trimtab.store.engine import as_utc
from trimtab.store.tables import dataset_items, dataset_version_items, dataset_versions, datasets
from trimtab.types import SHARED, Scope


@dataclass(frozen=True, slots=True)
class DatasetKey:
    scope: Scope  # the owning tenant, or SHARED
    name: str

    def label(self) -> str:
        return self.name if self.scope == SHARED else f"{self.scope}/{self.name}"


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    key: DatasetKey
    number: int
    digest: str
    items: int
    message: str
    author: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.key.name,
            "tenant": self.key.scope or None,
            "version": self.number,
            "digest": self.digest,
            "items": self.items,
            "message": self.message,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PushResult:
    version: DatasetVersion
    created: bool  # False: the items equal an existing version's


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(
        key=DatasetKey(row.scope, row.dataset),
        number=row.number,
        digest=row.digest,
        items=row.items,
        message=row.message,
        author=row.author,
        created_at=as_utc(row.created_at),
    )


class DatasetStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writing -----------------------------------------------------------------------

    def push(
        self,
        key: DatasetKey,
        items: Sequence[Item],
        *,
        message: str,
        actor: Actor,
        now: datetime | None = None,
    ) -> PushResult:
        """Store `items` as the dataset's next version, unless some version already holds
        exactly these items (then that version, `created` False)."""
        at = now or datetime.now(UTC)
        digest = dataset_digest(items)
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(dataset_versions).where(
                    dataset_versions.c.scope == key.scope,
                    dataset_versions.c.dataset == key.name,
                    dataset_versions.c.digest == digest,
                )
            ).first()
            if existing is not None:
                return PushResult(_version(existing), created=False)
            if conn.execute(select(datasets.c.name).where(*self._is(key))).first() is None:
                conn.execute(
                    datasets.insert().values(
                        scope=key.scope, name=key.name, created_at=at, created_by=actor.name
                    )
                )
            number = 1 + (
                conn.scalar(
                    select(func.coalesce(func.max(dataset_versions.c.number), 0)).where(
                        dataset_versions.c.scope == key.scope,
                        dataset_versions.c.dataset == key.name,
                    )
                )
                or 0
            )
            digests = [item.digest for item in items]  # each item serialised once here
            self._store_items(conn, items, digests)
            conn.execute(
                dataset_versions.insert().values(
                    scope=key.scope,
                    dataset=key.name,
                    number=number,
                    digest=digest,
                    items=len(items),
                    message=message,
                    author=actor.name or None,
                    created_at=at,
                )
            )
            conn.execute(
                dataset_version_items.insert(),
                [
                    {
                        "scope": key.scope,
                        "dataset": key.name,
                        "number": number,
                        "position": position,
                        "item_id": item.id,
                        "item_digest": item_digest,
                    }
                    for position, (item, item_digest) in enumerate(zip(items, digests, strict=True))
                ],
            )
            version = DatasetVersion(
                key, number, digest, len(items), message, actor.name or None, at
            )
            AuditLog.write(
                conn,
                actor.event(
                    "dataset.push",
                    target=key.label(),
                    tenant=key.scope or None,
                    detail={"version": number, "items": len(items), "digest": digest},
                ),
            )
        return PushResult(version, created=True)

    @staticmethod
    def _store_items(conn: Connection, items: Sequence[Item], digests: Sequence[str]) -> None:
        """Each distinct item's content, unless some version already stored it."""
        bodies = {d: item.to_json() for item, d in zip(items, digests, strict=True)}
        rows = [{"digest": d, "body": b} for d, b in bodies.items()]
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            conn.execute(insert(dataset_items).values(chunk).on_conflict_do_nothing())

    # -- reading -----------------------------------------------------------------------

    @staticmethod
    def _is(key: DatasetKey) -> tuple[Any, ...]:
        return (datasets.c.scope == key.scope, datasets.c.name == key.name)

    def resolve(self, name: str, tenant: str) -> DatasetKey:
        """A caller's NAME: its tenant's own dataset, else the shared one; NotFound else
        (another tenant's dataset is reported like a missing one)."""
        with self.engine.connect() as conn:
            scopes = set(
                conn.scalars(
                    select(datasets.c.scope).where(
                        datasets.c.name == name, datasets.c.scope.in_([tenant, SHARED])
                    )
                )
            )
        if tenant in scopes:
            return DatasetKey(tenant, name)
        if SHARED in scopes:
            return DatasetKey(SHARED, name)
        raise NotFound(f"no dataset named '{name}'")

    def newest(self, tenant: str | None) -> list[DatasetVersion]:
        """Each dataset's newest version: a tenant's and the shared ones, or all (None)."""
        v = dataset_versions.c
        newest = (
            select(v.scope, v.dataset, func.max(v.number).label("number"))
            .group_by(v.scope, v.dataset)
            .subquery()
        )
        query = (
            select(dataset_versions)
            .join(
                newest,
                and_(
                    newest.c.scope == v.scope,
                    newest.c.dataset == v.dataset,
                    newest.c.number == v.number,
                ),
            )
            .order_by(v.dataset, v.scope)
        )
        if tenant is not None:
            query = query.where(v.scope.in_([tenant, SHARED]))
        with self.engine.connect() as conn:
            return [_version(row) for row in conn.execute(query)]

    def versions(self, key: DatasetKey) -> list[DatasetVersion]:
        v = dataset_versions.c
        query = (
            select(dataset_versions)
            .where(v.scope == key.scope, v.dataset == key.name)
            .order_by(v.number)
        )
        with self.engine.connect() as conn:
            found = [_version(row) for row in conn.execute(query)]
        if not found:
            raise NotFound(f"no dataset named '{key.name}'")
        return found

    def version(self, key: DatasetKey, number: int | None) -> DatasetVersion:
        """A version by number, or the newest (None)."""
        found = self.versions(key)
        if number is None:
            return found[-1]
        for v in found:
            if v.number == number:
                return v
        raise NotFound(
            f"dataset '{key.name}' has no version {number} (it has 1..{found[-1].number})"
        )

    def items(self, key: DatasetKey, number: int) -> list[Item]:
        """The items of a version, in order."""
        j = dataset_version_items.c
        query = (
            select(dataset_items.c.body)
            .join(dataset_version_items, j.item_digest == dataset_items.c.digest)
            .where(j.scope == key.scope, j.dataset == key.name, j.number == number)
            .order_by(j.position)
        )
        with self.engine.connect() as conn:
            return [_item(body) for body in conn.scalars(query)]

    def item_ids(self, key: DatasetKey, number: int) -> list[str]:
        """The ids of a version's items, in order (no bodies read)."""
        j = dataset_version_items.c
        query = (
            select(j.item_id)
            .where(j.scope == key.scope, j.dataset == key.name, j.number == number)
            .order_by(j.position)
        )
        with self.engine.connect() as conn:
            return list(conn.scalars(query))


def _item(body: dict[str, Any]) -> Item:
    messages = body.get("messages")
    return Item(
        id=body["id"],
        variables=body.get("variables") if messages is None else None,
        messages=tuple(messages) if messages is not None else None,
        expected=body.get("expected"),
        tags=tuple(body.get("tags", ())),
        metadata=body.get("metadata", {}),
    )


def item_from_json(body: dict[str, Any]) -> Item:
    """An item from its JSON form (as the store and the API hold it)."""
    return _item(body)
