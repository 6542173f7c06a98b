"""Request parsing for the control-plane API (query strings and JSON bodies), with
errors that name the parameter."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request

from trimtab.errors import GatewayError

_WINDOW = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=31)


def bad_param(name: str, message: str) -> GatewayError:
    return GatewayError(400, "invalid_parameter", f"{name}: {message}", param=name)


async def json_object(
    request: Request,
    *,
    max_bytes: int | None = None,
    fields: Collection[str] | None = None,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """The request's body as a JSON object: at most `max_bytes`, only `fields` (when
    given), and `{}` for an empty body when `allow_empty`."""
    raw = await request.body()
    if max_bytes is not None and len(raw) > max_bytes:
        raise GatewayError(413, "request_too_large", f"body over {max_bytes} bytes")
    if allow_empty and not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, "invalid_request", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "invalid_request", "the body must be a JSON object")
    if fields is not None:
        unknown = sorted(set(body) - set(fields))
        if unknown:
            raise bad_param(unknown[0], f"unknown field (known: {', '.join(fields)})")
    return body


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
