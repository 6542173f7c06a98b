"""The store's own classification of its failures: an outage, or something else; and
each failure in one line that carries no data.

SQLAlchemy's str() of an error appends the statement and its bound parameters: for the
telemetry writer that is prompts, responses, tenants and key ids. Logs and health
endpoints use `summary` instead.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from trimtab.errors import Unavailable

MAX_CHARS = 200


def summary(exc: BaseException) -> str:
    """`ErrorClass (first line of the driver's message)`, never the SQL or its parameters."""
    name = type(exc).__name__
    cause: BaseException = exc
    if isinstance(exc, StatementError):
        # .orig is the driver's exception (or whatever failed while binding parameters);
        # its message is the server's or the driver's, without the statement
        cause = exc.orig if isinstance(exc.orig, BaseException) else exc
        if cause is exc:
            return name
    lines = str(cause).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) > MAX_CHARS:
        first = first[: MAX_CHARS - 1] + "…"
    return f"{name} ({first})" if first else name


def store_unavailable(exc: BaseException) -> Unavailable | None:
    """The 503 for a store that cannot be reached (connection refused, lost or timed out);
    None for any other failure."""
    outage = isinstance(exc, OperationalError | InterfaceError | PoolTimeout) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
    if not outage or _schema_error(exc):
        return None
    cause = type(exc.orig).__name__ if isinstance(exc, DBAPIError) else type(exc).__name__
    return Unavailable(f"the store is unreachable: {cause}", code="store_unavailable")


def _schema_error(exc: BaseException) -> bool:
    # SQLite reports a missing table as an OperationalError too: that store is there
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return isinstance(orig, sqlite3.OperationalError) and str(orig).startswith("no such ")
