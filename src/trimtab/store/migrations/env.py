"""Alembic environment: trimtab passes its own connection in `config.attributes`."""

from __future__ import annotations

from alembic import context

from trimtab.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("trimtab migrations run through trimtab.store.engine.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
