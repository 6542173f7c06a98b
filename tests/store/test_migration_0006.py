"""0006 keeps every route, version, event, rollout and attestation, each in its route's
scope (the tenant, or "" when shared), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select, text

from trimtab.store.engine import _alembic_config, make_engine, migrate
from trimtab.store.tables import attestations, rollouts, route_events, route_versions, routes


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def upgrade_to(engine: Engine, revision: str) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_rows_keep_their_route_in_its_scope(engine: Engine) -> None:
    upgrade_to(engine, "0005")
    with engine.begin() as conn:
        for name, tenant in (("shared-faq", None), ("acme-faq", "acme")):
            conn.execute(
                text(
                    "INSERT INTO routes (name, owner, risk_tier, tenant, created_at, "
                    "updated_at, stable_version) VALUES (:n, 'o', 1, :t, :at, :at, 1)"
                ),
                {"n": name, "t": tenant, "at": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO route_versions (route, number, digest, bundle, message, "
                    "created_at) VALUES (:n, 1, 'd', '{}', 'm', :at)"
                ),
                {"n": name, "at": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO route_events (route, at, kind, version) "
                    "VALUES (:n, :at, 'apply', 1)"
                ),
                {"n": name, "at": NOW},
            )
            conn.execute(
                text(
                    'INSERT INTO attestations (route, version, kind, result, "by", at) '
                    "VALUES (:n, 1, 'eval', 'pass', 'x', :at)"
                ),
                {"n": name, "at": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO rollouts (id, route, stable_version, candidate_version, plan_name, "
                "plan, stage, stage_started_at, status, started_at) VALUES ('ro_1', 'acme-faq', "
                "1, 1, 'default', '{}', 0, :at, 'aborted', :at)"
            ),
            {"at": NOW},
        )
    migrate(engine)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(routes.c.scope, routes.c.name)).all()) == [
            ("", "shared-faq"),
            ("acme", "acme-faq"),
        ]
        for table in (route_versions, route_events, attestations):
            rows = sorted(conn.execute(select(table.c.scope, table.c.route)).all())
            assert rows == [("", "shared-faq"), ("acme", "acme-faq")], table.name
        assert conn.execute(select(rollouts.c.scope, rollouts.c.route)).all() == [
            ("acme", "acme-faq")
        ]
        old_ids = set(conn.execute(select(route_events.c.id)).scalars())
    # a new event gets a fresh id (on PostgreSQL the sequence moved past the copied ids)
    with engine.begin() as conn:
        conn.execute(
            insert(route_events).values(
                scope="acme", route="acme-faq", at=NOW, kind="pause", version=1
            )
        )
        conn.execute(
            insert(attestations).values(
                scope="", route="shared-faq", version=1, kind="eval", result="pass",
                by="y", at=NOW,
            )
        )  # fmt: skip
        new_ids = set(conn.execute(select(route_events.c.id)).scalars()) - old_ids
    assert len(new_ids) == 1 and min(new_ids) > max(old_ids)
    # a second tenant may now have a route of the same name
    with engine.begin() as conn:
        conn.execute(
            insert(routes).values(
                scope="globex", name="acme-faq", owner="o", risk_tier=0,
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
