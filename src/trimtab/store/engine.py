"""Open a store URL as a SQLAlchemy engine and bring its schema up to date."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything trimtab stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` and pick the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """An engine for SQLite (WAL) or PostgreSQL."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        parsed = make_url(url)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revisions() -> list[str]:
    """The newest migration of each branch, sorted: features that land side by side may
    each branch from the same parent, and `migrate` applies every branch."""
    heads = sorted(ScriptDirectory.from_config(_alembic_config()).get_heads())
    if not heads:
        raise RuntimeError("no migrations found")
    return heads


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied."""
    cfg = _alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # several gateway processes may start at once: one migrates, the others wait
            connection.execute(text("SELECT pg_advisory_xact_lock(7261390412)"))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")
