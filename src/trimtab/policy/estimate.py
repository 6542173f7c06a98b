"""A cheap estimate of a request's input tokens, made before the provider is called.

The heuristic, deliberately tokenizer-free (it runs on every request):

    tokens = ceil(characters / 4) + 4 per message + 3 per request + 256 per image

where *characters* counts every string in the request's prompt-bearing fields —
`messages` (content text, tool calls, tool results), Anthropic's `system`, `tools`
definitions, and, for embeddings and legacy completions, `input` / `prompt` — but not
structural strings (roles, types, ids, image URLs or base64 data). Pre-tokenized input
(lists of integers) counts one token per integer. Four characters per token is the usual
rule of thumb for English text with BPE tokenizers; code and non-Latin scripts run
higher, so budgets also settle the provider's real usage after the call.
"""

from __future__ import annotations

import math
from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3
IMAGE_TOKENS = 256

_PROMPT_FIELDS = ("messages", "system", "tools", "functions", "input", "prompt")
# structural strings that are not prompt text
_SKIP_KEYS = frozenset(
    {
        "role",
        "type",
        "id",
        "tool_call_id",
        "tool_use_id",
        "url",
        "data",
        "media_type",
        "detail",
        "cache_control",
        "signature",
    }
)
_IMAGE_TYPES = frozenset({"image", "image_url", "input_image"})


def _walk(value: Any, acc: list[int]) -> None:
    """acc = [characters, integer tokens, images]"""
    if isinstance(value, str):
        acc[0] += len(value)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        acc[1] += 1
    elif isinstance(value, list):
        for item in value:
            _walk(item, acc)
    elif isinstance(value, dict):
        kind = value.get("type")  # any JSON value: a list or an object is not hashable
        if isinstance(kind, str) and kind in _IMAGE_TYPES:
            acc[2] += 1
            return
        for key, item in value.items():
            if key not in _SKIP_KEYS:
                _walk(item, acc)


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of an OpenAI or Anthropic request body (see the module doc)."""
    acc = [0, 0, 0]
    for name in _PROMPT_FIELDS:
        if name in body:
            _walk(body[name], acc)
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 0
    chars, int_tokens, images = acc
    return (
        math.ceil(chars / CHARS_PER_TOKEN)
        + int_tokens
        + IMAGE_TOKENS * images
        + MESSAGE_OVERHEAD * count
        + REQUEST_OVERHEAD
    )


def requested_output_tokens(body: dict[str, Any]) -> int | None:
    """The output-token cap the client asked for, if any.

    OpenAI `max_completion_tokens` (or the older `max_tokens`), Anthropic `max_tokens`.
    """
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def estimate_output_tokens(response: dict[str, Any]) -> int:
    """Estimated tokens of a (partial) response in either wire format: its text / 4."""
    acc = [0, 0, 0]
    for choice in response.get("choices") or []:
        if isinstance(choice, dict):
            _walk(choice.get("message"), acc)
    _walk(response.get("content"), acc)
    return math.ceil(acc[0] / CHARS_PER_TOKEN) + acc[1]
