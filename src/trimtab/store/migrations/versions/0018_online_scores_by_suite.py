"""Online scores keyed by their suite: `online_scores`' primary key becomes (request_id,
scope, suite, scorer), from (request_id, scorer).

Suites are unique by (scope, name), and two of them may score one request with scorers of
the same name (two teams' suites each with `helpful`, a shared suite and a tenant's of the
same name): under the old key the second suite's score was dropped by the insert's
`on conflict do nothing`, so its eval-score SLI undercounted. Every row already stores its
suite and scope, so the rows are kept as they are; only the key changes (SQLite rebuilds
the table in batch mode, PostgreSQL alters the constraint in place).

The downgrade restores the old key, so it must first drop what that key cannot hold: for
each request and scorer, every row but the first suite's (by scope, then name). Their
`score_rollups` counts stay: those are sums, not rows.

Revision ID: 0018_online_scores_by_suite
Revises: 0017_rollup_refusals, 0012_online_scores
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_online_scores_by_suite"
# after 0017, and a merge of the branch that made the table it rekeys
down_revision = ("0017_rollup_refusals", "0012_online_scores")
branch_labels = None
depends_on = None

TABLE = "online_scores"
PKEY = "online_scores_pkey"  # PostgreSQL's name for the key 0012 created
NEW_KEY = ["request_id", "scope", "suite", "scorer"]
OLD_KEY = ["request_id", "scorer"]


def _table(key: list[str]) -> sa.Table:
    """online_scores as 0012 made it, keyed by `key`."""
    columns = [
        sa.Column("request_id", sa.String(40)),
        sa.Column("scorer", sa.String(64)),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("value", sa.Float),
        sa.Column("passed", sa.Boolean),
        sa.Column("reason", sa.Text),
        sa.Column("request_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    ]
    return sa.Table(
        TABLE,
        sa.MetaData(),
        *columns,
        sa.PrimaryKeyConstraint(*key, name=PKEY),
        sa.Index("ix_online_scores_route_time", "route", "version", "request_at"),
    )


def _rekey(key: list[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a key: the batch rebuilds the table with the new one (the
        # table given, not reflected, so it has no other key), its rows copied over
        with op.batch_alter_table(TABLE, copy_from=_table(key), recreate="always"):
            pass
        return
    with op.batch_alter_table(TABLE) as batch:  # in place: ALTER TABLE
        batch.drop_constraint(PKEY, type_="primary")
        batch.create_primary_key(PKEY, key)


def upgrade() -> None:
    _rekey(NEW_KEY)


def downgrade() -> None:
    t = sa.table(TABLE, *(sa.column(n) for n in NEW_KEY))
    first = sa.alias(t, "first")
    earlier = (
        sa.select(sa.literal(1))
        .select_from(first)
        .where(
            first.c.request_id == t.c.request_id,
            first.c.scorer == t.c.scorer,
            sa.or_(
                first.c.scope < t.c.scope,
                sa.and_(first.c.scope == t.c.scope, first.c.suite < t.c.suite),
            ),
        )
    )
    op.execute(sa.delete(t).where(earlier.exists()))
    _rekey(OLD_KEY)
