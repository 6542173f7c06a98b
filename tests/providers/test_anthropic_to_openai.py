"""An Anthropic Messages request to an OpenAI Chat Completions upstream, and its answer back
(trimtab.providers.anthropic_to_openai)."""

from __future__ import annotations

from typing import Any

import pytest

from trimtab.providers.anthropic_to_openai import (
    anthropic_to_openai_request,
    openai_to_anthropic_response,
)
from trimtab.providers.translate import (
    JSON,
    TranslationError,
)


def to_openai(messages: list[JSON], **params: Any) -> JSON:
    body = {"model": "gw", "max_tokens": 100, "messages": messages, **params}
    return anthropic_to_openai_request(body, "gpt-up")


class TestAnthropicToOpenAIRequest:
    def test_minimal(self) -> None:
        out = to_openai([{"role": "user", "content": "hi"}])
        assert out == {
            "model": "gpt-up",
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 100,
        }

    def test_system_string_and_blocks(self) -> None:
        assert to_openai([{"role": "user", "content": "x"}], system="s")["messages"][0] == {
            "role": "system",
            "content": "s",
        }
        blocks = [
            {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "b"},
        ]
        out = to_openai([{"role": "user", "content": "x"}], system=blocks)
        assert out["messages"][0] == {"role": "system", "content": "a\n\nb"}
        assert len(to_openai([{"role": "user", "content": "x"}], system="")["messages"]) == 1
        with pytest.raises(TranslationError, match=r"system\[0\]\.type 'image'"):
            to_openai([{"role": "user", "content": "x"}], system=[{"type": "image"}])

    def test_params(self) -> None:
        out = to_openai(
            [{"role": "user", "content": "x"}],
            temperature=0.5,
            top_p=0.8,
            stop_sequences=["Z"],
            stream=True,
            metadata={"user_id": "u"},
            thinking={"type": "disabled"},
        )
        assert out["temperature"] == 0.5
        assert out["top_p"] == 0.8
        assert out["stop"] == ["Z"]
        assert out["stream"] is True
        assert out["stream_options"] == {"include_usage": True}
        assert out["user"] == "u"
        off = to_openai([{"role": "user", "content": "x"}], stream=False)
        assert off["stream"] is False
        assert "stream_options" not in off

    def test_rejected_params(self) -> None:
        with pytest.raises(TranslationError, match="top_k is not supported by openai models"):
            to_openai([{"role": "user", "content": "x"}], top_k=5)
        with pytest.raises(TranslationError, match=r"thinking\.type 'enabled'"):
            to_openai(
                [{"role": "user", "content": "x"}],
                thinking={"type": "enabled", "budget_tokens": 1024},
            )

    def test_blocks_images_tools(self) -> None:
        out = to_openai(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/jpeg",
                                "data": "QQ==",
                            },
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                        {"type": "text", "text": "go on"},
                    ],
                },
            ]
        )
        assert out["messages"] == [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QQ=="}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":[1,2]}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
            {"role": "user", "content": "go on"},
        ]

    def test_tool_only_assistant_has_null_content(self) -> None:
        out = to_openai(
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                },
            ]
        )
        assert out["messages"][1]["content"] is None
        assert out["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{}"

    def test_tool_result_content_variants(self) -> None:
        out = to_openai(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "a"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "b",
                            "content": [{"type": "text", "text": "one"}],
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "c",
                            "is_error": True,
                            "content": [
                                {"type": "text", "text": "x"},
                                {"type": "text", "text": "y"},
                            ],
                        },
                    ],
                }
            ]
        )
        assert out["messages"] == [
            {"role": "tool", "tool_call_id": "a", "content": ""},
            {"role": "tool", "tool_call_id": "b", "content": "one"},
            {
                "role": "tool",
                "tool_call_id": "c",
                "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}],
            },
        ]

    def test_unsupported_blocks(self) -> None:
        with pytest.raises(TranslationError) as info:
            to_openai([{"role": "user", "content": [{"type": "document", "source": {}}]}])
        assert (
            str(info.value)
            == "messages[0].content[0].type 'document' is not supported by openai models"
        )
        with pytest.raises(
            TranslationError, match=r"content\[0\]\.content\[0\]\.type 'image' in a tool result"
        ):
            to_openai(
                [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image"}],
                            }
                        ],
                    }
                ]
            )
        with pytest.raises(TranslationError, match=r"source\.type 'file'"):
            to_openai(
                [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            )
        with pytest.raises(TranslationError, match=r"messages\[0\]\.role 'system'"):
            to_openai([{"role": "system", "content": "x"}])
        with pytest.raises(
            TranslationError, match=r"messages\[0\]\.content\[0\]\.type 'server_tool_use'"
        ):
            to_openai([{"role": "assistant", "content": [{"type": "server_tool_use"}]}])
        with pytest.raises(TranslationError, match="messages must be a non-empty list"):
            anthropic_to_openai_request({"max_tokens": 1}, "m")

    def test_tools_and_choice(self) -> None:
        tools = [
            {"name": "w", "description": "weather", "input_schema": {"type": "object"}},
            {"type": "custom", "name": "x", "input_schema": {"type": "object"}},
        ]
        out = to_openai(
            [{"role": "user", "content": "q"}],
            tools=tools,
            tool_choice={"type": "tool", "name": "w", "disable_parallel_tool_use": True},
        )
        assert out["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "w",
                    "description": "weather",
                    "parameters": {"type": "object"},
                },
            },
            {"type": "function", "function": {"name": "x", "parameters": {"type": "object"}}},
        ]
        assert out["tool_choice"] == {"type": "function", "function": {"name": "w"}}
        assert out["parallel_tool_calls"] is False

    @pytest.mark.parametrize(
        ("ctype", "expected"), [("auto", "auto"), ("any", "required"), ("none", "none")]
    )
    def test_tool_choice_types(self, ctype: str, expected: str) -> None:
        out = to_openai([{"role": "user", "content": "q"}], tool_choice={"type": ctype})
        assert out["tool_choice"] == expected
        assert "parallel_tool_calls" not in out

    def test_server_tools_rejected(self) -> None:
        with pytest.raises(TranslationError, match=r"tools\[0\]\.type 'web_search_20250305'"):
            to_openai(
                [{"role": "user", "content": "q"}],
                tools=[{"type": "web_search_20250305", "name": "web_search"}],
            )


class TestOpenAIToAnthropicResponse:
    def test_openai_to_anthropic_response(self) -> None:
        resp = {
            "id": "chatcmpl-9",
            "object": "chat.completion",
            "created": 5,
            "model": "gpt-x",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "hi",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"a":1}'},
                            },
                            {
                                "id": "call_2",
                                "type": "function",
                                "function": {"name": "g", "arguments": '{"a":'},
                            },
                            {
                                "id": "call_3",
                                "type": "function",
                                "function": {"name": "h", "arguments": ""},
                            },
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
        assert openai_to_anthropic_response(resp, "gw") == {
            "id": "msg_chatcmpl-9",
            "type": "message",
            "role": "assistant",
            "model": "gw",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
                {"type": "tool_use", "id": "call_2", "name": "g", "input": '{"a":'},
                {"type": "tool_use", "id": "call_3", "name": "h", "input": {}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 7, "output_tokens": 3},
        }

    def test_openai_to_anthropic_response_odd_inputs(self) -> None:
        out = openai_to_anthropic_response({"id": "x", "choices": []}, "gw")
        assert out["content"] == []
        assert out["stop_reason"] == "end_turn"
        assert out["usage"] == {"input_tokens": 0, "output_tokens": 0}
        refusal = {
            "choices": [{"message": {"content": None, "refusal": "nope"}, "finish_reason": "stop"}]
        }
        out = openai_to_anthropic_response(refusal, "gw")
        assert out["content"] == [{"type": "text", "text": "nope"}]
        assert out["stop_reason"] == "refusal"
        parts = {
            "choices": [
                {
                    "message": {
                        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": ""}]
                    }
                }
            ]
        }
        assert openai_to_anthropic_response(parts, "gw")["content"] == [
            {"type": "text", "text": "a"}
        ]
        length = {"choices": [{"message": {"content": ""}, "finish_reason": "length"}]}
        out = openai_to_anthropic_response(length, "gw")
        assert out["content"] == []
        assert out["stop_reason"] == "max_tokens"
