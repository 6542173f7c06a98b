"""What trimtab reads out of an upstream's response body: the error message and token usage."""

from __future__ import annotations

from typing import Any

import orjson

from trimtab.providers.translate import (
    JSON,
    anthropic_input_tokens,
    as_int,
)


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def openai_error_message(body: bytes) -> str | None:
    """Human-readable message of an OpenAI-format error body, or None if it is not one."""
    data = _loads(body)
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        return message if isinstance(message, str) else None
    # Several OpenAI-compatible servers send {"error": "<message>"}.
    return error if isinstance(error, str) else None


def anthropic_error_message(body: bytes) -> str | None:
    """Human-readable message of an Anthropic-format error body, or None if it is not one."""
    data = _loads(body)
    if not isinstance(data, dict) or data.get("type", "error") != "error":
        return None
    error = data.get("error")
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    return message if isinstance(message, str) else None


def openai_usage(resp: JSON) -> tuple[int | None, int | None]:
    """(input_tokens, output_tokens) of an OpenAI chat.completion object."""
    usage = resp.get("usage")
    if not isinstance(usage, dict):
        return None, None
    return as_int(usage.get("prompt_tokens")), as_int(usage.get("completion_tokens"))


def anthropic_usage(resp: JSON) -> tuple[int | None, int | None]:
    """(input_tokens incl. cache reads/writes, output_tokens) of an Anthropic Message."""
    usage = resp.get("usage")
    if not isinstance(usage, dict):
        return None, None
    return anthropic_input_tokens(usage), as_int(usage.get("output_tokens"))
