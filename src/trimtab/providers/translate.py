"""The vocabulary of translation between OpenAI Chat Completions and Anthropic Messages.

The two directions are :mod:`trimtab.providers.openai_to_anthropic` and
:mod:`trimtab.providers.anthropic_to_openai` (streams: :mod:`trimtab.providers.stream_translate`).
Everything works on plain decoded JSON dicts and does no I/O. Inputs are never mutated;
outputs may share leaf values (schemas, cache_control dicts) with the input instead of copying.
"""

from __future__ import annotations

from typing import Any

import orjson

JSON = dict[str, Any]

_STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ANTHROPIC_INPUT_KEYS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class TranslationError(ValueError):
    """Input that cannot be expressed in the target wire format without changing its meaning."""


# --------------------------------------------------------------------------- shared helpers


def finish_reason_from_stop_reason(stop_reason: str | None) -> str:
    """Map an Anthropic stop_reason to an OpenAI finish_reason ("stop" when unknown)."""
    return _STOP_TO_FINISH.get(stop_reason or "", "stop")


def stop_reason_from_finish_reason(finish_reason: str | None) -> str:
    """Map an OpenAI finish_reason to an Anthropic stop_reason ("end_turn" when unknown)."""
    return _FINISH_TO_STOP.get(finish_reason or "", "end_turn")


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def anthropic_input_tokens(usage: JSON) -> int | None:
    """Total Anthropic input tokens: uncached input plus cache reads and cache writes."""
    total: int | None = None
    for key in _ANTHROPIC_INPUT_KEYS:
        value = as_int(usage.get(key))
        if value is not None:
            total = value if total is None else total + value
    return total


def openai_usage_from_anthropic(usage: JSON) -> JSON:
    """Build an OpenAI usage object from an Anthropic usage object."""
    prompt = anthropic_input_tokens(usage) or 0
    completion = as_int(usage.get("output_tokens")) or 0
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = as_int(usage.get("cache_read_input_tokens"))
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def unsupported(what: str, target: str) -> TranslationError:
    return TranslationError(f"{what} is not supported by {target} models")


def require_str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise TranslationError(f"{path} must be a non-empty string")
    return value


def as_dict(value: Any, path: str) -> JSON:
    if not isinstance(value, dict):
        raise TranslationError(f"{path} must be an object")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"{path} must be a list")
    return value


def optional_text(value: Any, path: str) -> str:
    """A text field that may be absent: "" for None, else it must be a string."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TranslationError(f"{path} must be a string")
    return value


def dump(value: Any) -> str:
    if isinstance(value, str):  # already serialized (e.g. unparseable streamed tool input)
        return value
    return orjson.dumps({} if value is None else value).decode()


def message_text(texts: list[str], has_tool_calls: bool) -> str | None:
    # OpenAI's convention: content is null on a tool-calling turn that has no text.
    text = "".join(texts)
    return None if has_tool_calls and not text else text


def empty_schema() -> JSON:
    return {"type": "object", "properties": {}}


def openai_tool_call(call_id: Any, name: Any, arguments: Any) -> JSON:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": dump(arguments)},
    }
