"""Named leases (store/leases.py): one holder at a time for work one process must do."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
)

from trimtab.store.tables._metadata import metadata

# one row per named lease (say "slo-evaluator"): who holds it and until when (store/leases.py)
leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),  # this holder's first
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Column("epoch", Integer, nullable=False),  # +1 each time another holder takes it over
)
