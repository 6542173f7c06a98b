"""The refusal SLI's count (issue 14): `refused` on `rollups_minute` and `rollups_hour`,
the row's requests whose response the model refused (a refusal finish reason,
types.is_refusal), counted by the telemetry writer and summed by the compaction.

Rows written before hold NULL, not 0: their requests were never counted, and a 0 would
say that none of them was refused. The refusal SLI takes a NULL row in neither count, so a
window before this migration reports "no data" rather than 100 %; a minute row written on
both sides of it stays NULL (telemetry/store.py), as does an hour or day holding such a
minute (telemetry/hourly.py). No recount from the request rows: retention deletes them
long before the rollups, so it could not be told which minutes it would be exact for
without scanning every request.

Revision ID: 0017_rollup_refusals
Revises: 0016_score_session_rollups
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_rollup_refusals"
down_revision = "0016_score_session_rollups"
branch_labels = None
depends_on = None

TABLES = ("rollups_minute", "rollups_hour")


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("refused", sa.Integer, nullable=True))


def downgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as batch:
            batch.drop_column("refused")
