"""Route names are per tenant: a route's identity becomes (scope, name), scope being the
owning tenant or "" for a shared route (issue 8, item 6).

Every registry table gets a `scope` column and composite keys. SQLite cannot change a
primary key in place, so on both databases each table is rebuilt: created anew as
`<name>_new`, filled from the old one (scope from the route's tenant), the old one
dropped, the new one renamed. Ids are kept; on PostgreSQL the id sequences are moved past
them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SCOPE = "COALESCE((SELECT r.tenant FROM routes r WHERE r.name = t.route), '')"


def _key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["scope", "route"], [f"{table}.scope", f"{table}.name"])


def _create_new(routes: str) -> None:
    op.create_table(
        "routes_new",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("risk_tier", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stable_version", sa.Integer),
        sa.Column("previous_stable_version", sa.Integer),
    )
    op.create_table(
        "route_versions_new",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("route", sa.String(128), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("bundle", sa.JSON, nullable=False),
        sa.Column("author", sa.String(256)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parent", sa.Integer),
        _key(routes),
    )
    op.create_table(
        "route_events_new",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("actor", sa.String(256)),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.JSON),
        _key(routes),
    )
    op.create_table(
        "rollouts_new",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("stable_version", sa.Integer, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=False),
        sa.Column("plan_name", sa.String(64), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_starts", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(256)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
        sa.Column("last_decision", sa.JSON),
        _key(routes),
    )
    op.create_table(
        "attestations_new",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("result", sa.String(8), nullable=False),
        sa.Column("by", sa.String(256), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("url", sa.String(1024)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _key(routes),
    )


_CHILD_COLUMNS = {
    "route_versions": "route, number, digest, bundle, author, message, created_at, parent",
    "route_events": "id, route, at, kind, version, actor, reason, detail",
    "rollouts": (
        "id, route, stable_version, candidate_version, plan_name, plan, stage, "
        "stage_started_at, stage_starts, status, started_at, started_by, ended_at, reason, "
        "last_decision"
    ),
    "attestations": "id, route, version, kind, result, by, note, url, at",
}
_ROUTE_COLUMNS = (
    "name, owner, risk_tier, created_at, created_by, updated_at, stable_version, "
    "previous_stable_version"
)
_INDEXES = [
    ("ix_routes_name", "routes", ["name"]),
    ("ix_route_versions_digest", "route_versions", ["digest"]),
    ("ix_route_events_route", "route_events", ["scope", "route", "id"]),
    ("ix_rollouts_route_status", "rollouts", ["scope", "route", "status"]),
    ("ix_attestations_route_version", "attestations", ["scope", "route", "version"]),
]
_OLD_INDEXES = [
    ("ix_routes_tenant", "routes"),
    ("ix_route_versions_digest", "route_versions"),
    ("ix_route_events_route", "route_events"),
    ("ix_rollouts_route_status", "rollouts"),
    ("ix_attestations_route_version", "attestations"),
]
_CHILDREN = ("route_versions", "route_events", "rollouts", "attestations")


def _quoted(columns: str) -> str:
    # "by" is a keyword on PostgreSQL: quote every column name
    return ", ".join(f'"{c.strip()}"' for c in columns.split(","))


def upgrade() -> None:
    for name, table in _OLD_INDEXES:
        op.drop_index(name, table_name=table)
    _create_new("routes_new")
    op.execute(
        f"INSERT INTO routes_new (scope, {_quoted(_ROUTE_COLUMNS)}) "
        f"SELECT COALESCE(tenant, ''), {_quoted(_ROUTE_COLUMNS)} FROM routes"
    )
    for child in _CHILDREN:
        columns = _quoted(_CHILD_COLUMNS[child])
        selected = ", ".join("t." + c for c in columns.split(", "))
        op.execute(
            f"INSERT INTO {child}_new (scope, {columns}) SELECT {_SCOPE}, {selected} FROM {child} t"
        )
    for child in _CHILDREN:
        op.drop_table(child)
    op.drop_table("routes")
    op.rename_table("routes_new", "routes")
    for child in _CHILDREN:
        op.rename_table(f"{child}_new", child)
    for name, table, indexed in _INDEXES:
        op.create_index(name, table, indexed)
    if op.get_context().dialect.name == "postgresql":
        for serial in ("route_events", "attestations"):
            op.execute(
                f"SELECT setval(pg_get_serial_sequence('{serial}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {serial}), 0) + 1, false)"
            )


def downgrade() -> None:
    raise NotImplementedError(
        "0006 makes route names per tenant; two tenants' routes of one name cannot be "
        "merged back into one global name"
    )
