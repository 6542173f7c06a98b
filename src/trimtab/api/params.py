"""Request parsing for the control-plane API (query strings and JSON bodies), with
errors that name the parameter."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request

from trimtab import durations
from trimtab.bounds import exceeds_depth, too_deep_message
from trimtab.errors import Invalid
from trimtab.gateway.body import read_body

MAX_WINDOW = timedelta(days=31)
# Every /api body is bounded: 64 KiB unless the endpoint says otherwise (routes apply
# takes 1 MiB); a free-text field that is stored (a reason, a comment) at most MAX_TEXT.
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT = 4000
# PostgreSQL's text and JSON cannot hold U+0000: a NUL in a parameter or a body is refused
# here, the same on either store, rather than failing the query on PostgreSQL only
NUL = "\x00"
NUL_MESSAGE = "must not contain a NUL character (%00, \\u0000)"


def bad_param(name: str, message: str) -> Invalid:
    return Invalid(f"{name}: {message}", code="invalid_parameter", param=name)


async def json_object(
    request: Request,
    *,
    max_bytes: int = MAX_BODY_BYTES,
    fields: Collection[str] | None = None,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """The request's body as a JSON object: at most `max_bytes` (413 past it, read no
    further), nested at most MAX_DEPTH levels, only `fields` (when given), and `{}` for an
    empty body when `allow_empty`."""
    raw = await read_body(request, max_bytes)
    if allow_empty and not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    if exceeds_depth(body):
        raise Invalid(too_deep_message("the body"))
    if fields is not None:
        unknown = sorted(set(body) - set(fields))
        if unknown:
            raise bad_param(unknown[0], f"unknown field (known: {', '.join(fields)})")
    if b"\\u0000" in raw:  # JSON can only spell a NUL that way
        field = nul_field(body)
        if field is not None:
            raise bad_param(field, NUL_MESSAGE)
    return body


def nul_field(body: dict[str, Any]) -> str | None:
    """The first field of `body` with a NUL in a string or a key at any depth, if any."""
    for name, value in body.items():
        if NUL in name:
            return name
        stack = [value]
        while stack:
            node = stack.pop()
            if type(node) is str:
                if NUL in node:
                    return name
            elif type(node) is dict:
                stack.extend(node)
                stack.extend(node.values())
            elif type(node) is list:
                stack.extend(node)
    return None


def text_field(
    data: dict[str, Any], name: str, *, required: bool = False, limit: int = MAX_TEXT
) -> str | None:
    """A string field of a JSON body, at most `limit` characters; None when absent or empty."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise bad_param(name, "is required")
        return None
    if not isinstance(value, str):
        raise bad_param(name, "must be a string")
    if len(value) > limit:
        raise bad_param(name, f"is {len(value)} characters; at most {limit} are accepted")
    return value


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


def parse_duration(name: str, value: object, *, longest: timedelta, examples: str) -> timedelta:
    """A duration like '15m', '12h', '30d' or '45s', from 1 s to `longest`."""
    duration = durations.parse_duration(value) if isinstance(value, str) else None
    if duration is None:
        raise bad_param(name, f"{value!r} is not a duration like {examples}")
    if not timedelta(0) < duration <= longest:
        raise bad_param(name, f"'{value}' must be between 1s and {longest.days}d")
    return duration


def parse_window(value: str | None, default: str = "1h") -> timedelta:
    return parse_duration(
        "window", value or default, longest=MAX_WINDOW, examples="15m, 1h, 24h or 7d"
    )


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


_STATUS_DIGITS = 9  # any HTTP status, and within every store's integer


def parse_status(value: str | None) -> int | str | None:
    """An HTTP status (ASCII digits: '²' is a digit to str.isdigit, not to int), 'error'
    or 'ok'."""
    if value is None or value == "":
        return None
    if value in ("error", "ok"):
        return value
    if value.isascii() and value.isdigit() and len(value) <= _STATUS_DIGITS:
        return int(value)
    raise bad_param("status", f"'{value}' is not an HTTP status, 'error' or 'ok'")
