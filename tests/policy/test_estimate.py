"""The input-token estimate and the requested output cap."""

from __future__ import annotations

from typing import Any

import pytest

from trimtab.policy.estimate import estimate_input_tokens, requested_output_tokens


def test_openai_chat() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "x" * 40},  # 10 tokens
            {"role": "user", "content": "y" * 39},  # 10 tokens (rounded up with the rest)
        ],
    }
    assert estimate_input_tokens(body) == 20 + 2 * 4 + 3


def test_parts_tool_calls_and_images() -> None:
    body: dict[str, Any] = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a" * 8},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64," + "A" * 9999},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "abcd", "arguments": "{}" * 2},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "b" * 4},
        ]
    }
    # text: 8 + "abcd" 4 + "{}{}" 4 + 4 = 20 chars = 5 tokens; one image; three messages
    assert estimate_input_tokens(body) == 5 + 256 + 3 * 4 + 3


def test_anthropic_system_and_tools() -> None:
    body = {
        "model": "claude",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "s" * 16}],
        "tools": [{"name": "get", "description": "d" * 13, "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "u" * 8}],
    }
    # 16 + ("get" 3 + 13 = 16) + 8 = 40 chars -> 10 tokens; "object" under "type" is skipped
    assert estimate_input_tokens(body) == 10 + 4 + 3


def test_embeddings_text_and_token_ids() -> None:
    assert estimate_input_tokens({"input": "e" * 20}) == 5 + 3
    assert estimate_input_tokens({"input": ["e" * 4, "f" * 4]}) == 2 + 3
    assert estimate_input_tokens({"input": [[1, 2, 3], [4]]}) == 4 + 3


def test_empty_and_odd_bodies_do_not_fail() -> None:
    assert estimate_input_tokens({}) == 3
    assert estimate_input_tokens({"messages": "not a list", "system": 5}) >= 3
    # a part's "type" may be any JSON value (the gateway checks messages after the estimate)
    odd = [{"type": ["image_url"]}, {"type": {"a": 1}, "text": "hi"}, {"type": None}]
    assert estimate_input_tokens({"messages": [{"role": "user", "content": odd}]}) >= 3


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 50, "max_tokens": 100}, 50),
        ({"max_tokens": 0}, None),
        ({"max_tokens": True}, None),
        ({"max_tokens": "100"}, None),
        ({}, None),
    ],
)
def test_requested_output_tokens(body: dict[str, Any], expected: int | None) -> None:
    assert requested_output_tokens(body) == expected
