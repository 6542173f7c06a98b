"""Store failures in one line that carries no data.

SQLAlchemy's str() of an error appends the statement and its bound parameters: for the
telemetry writer that is prompts, responses, tenants and key ids. Logs and health
endpoints use `summary` instead.
"""

from __future__ import annotations

from sqlalchemy.exc import StatementError

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
