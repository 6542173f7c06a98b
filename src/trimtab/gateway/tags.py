"""Who and what a request is for: user, session and feature tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value[:256]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def request_tags(
    body: dict[str, Any], headers: Mapping[str, str]
) -> tuple[str | None, str | None, str | None]:
    """(user, session, feature): headers win over `metadata`, which wins over `user`."""
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    user = (
        _text(headers.get("x-trimtab-user"))
        or _text(meta.get("user_id"))
        or _text(meta.get("user"))
        or _text(body.get("user"))
    )
    session = (
        _text(headers.get("x-trimtab-session"))
        or _text(meta.get("session_id"))
        or _text(meta.get("session"))
    )
    feature = _text(headers.get("x-trimtab-feature")) or _text(meta.get("feature"))
    return user, session, feature
