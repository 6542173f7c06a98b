"""The one `MetaData` every table of the store is on (the Alembic env autogenerates
against it)."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
