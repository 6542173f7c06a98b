"""Query-string parsing with errors that name the parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from trimtab.errors import GatewayError

_WINDOW = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=31)


def bad_param(name: str, message: str) -> GatewayError:
    return GatewayError(400, "invalid_parameter", f"{name}: {message}", param=name)


def parse_time(name: str, value: str | None) -> datetime | None:
    """ISO 8601 (naive means UTC) or Unix seconds."""
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError):
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_param(name, f"'{value}' is neither ISO 8601 nor Unix seconds") from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        raise bad_param(name, f"'{value}' is out of range in UTC") from None


def parse_window(value: str | None, default: str = "1h") -> timedelta:
    text = value or default
    match = _WINDOW.match(text)
    if match is None:
        raise bad_param("window", f"'{text}' is not a duration like 15m, 1h, 24h or 7d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_WINDOW.total_seconds():
        raise bad_param("window", f"'{text}' must be between 1s and 31d")
    return timedelta(seconds=seconds)


def parse_int(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_param(name, f"'{value}' is not an integer") from None
    if not low <= number <= high:
        raise bad_param(name, f"{number} is outside {low}..{high}")
    return number


def parse_status(value: str | None) -> int | str | None:
    if value is None or value == "":
        return None
    if value in ("error", "ok"):
        return value
    if value.isdigit():
        return int(value)
    raise bad_param("status", f"'{value}' is not an HTTP status, 'error' or 'ok'")
