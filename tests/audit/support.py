"""Make the store refuse audit rows for real: a trigger that raises on insert."""

from __future__ import annotations

from sqlalchemy import Engine, text

_SQLITE = """
CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log refuses rows'); END
"""
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuses() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'the audit log refuses rows'; END $$ LANGUAGE plpgsql
"""
_PG_TRIGGER = (
    "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuses()"
)


def refuse_audit_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(_SQLITE))
        else:
            conn.execute(text(_PG_FUNCTION))
            conn.execute(text(_PG_TRIGGER))


def accept_audit_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_refuses"))
        else:
            conn.execute(text("DROP TRIGGER audit_refuses ON audit_log"))
