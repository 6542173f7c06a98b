from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimtab.providers.anthropic_to_openai import (
    anthropic_to_openai_request,
    openai_to_anthropic_response,
)
from trimtab.providers.openai_to_anthropic import (
    anthropic_to_openai_response,
    openai_chat_to_anthropic,
)
from trimtab.providers.response_fields import (
    anthropic_error_message,
    anthropic_usage,
    openai_error_message,
    openai_usage,
)
from trimtab.providers.translate import (
    JSON,
    TranslationError,
    finish_reason_from_stop_reason,
    stop_reason_from_finish_reason,
)

UP = "claude-up"


def to_anthropic(messages: list[JSON], **params: Any) -> JSON:
    return openai_chat_to_anthropic({"model": "gw-model", "messages": messages, **params}, UP)


def to_openai(messages: list[JSON], **params: Any) -> JSON:
    body = {"model": "gw", "max_tokens": 100, "messages": messages, **params}
    return anthropic_to_openai_request(body, "gpt-up")


# --------------------------------------------------------------------------- openai -> anthropic


class TestOpenAIChatToAnthropic:
    def test_minimal_request(self) -> None:
        out = to_anthropic([{"role": "user", "content": "hi"}])
        assert out == {
            "model": UP,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "hi"}],
        }

    def test_system_and_developer_hoisted_and_joined(self) -> None:
        out = to_anthropic(
            [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "be kind"}]},
                {"role": "user", "content": "hi"},
                {"role": "system", "content": ""},
            ]
        )
        assert out["system"] == "be brief\n\nbe kind"
        assert out["messages"] == [{"role": "user", "content": "hi"}]

    def test_system_with_non_text_part_rejected(self) -> None:
        with pytest.raises(
            TranslationError, match=r"messages\[0\]\.content\[0\]\.type 'image_url'"
        ):
            to_anthropic(
                [
                    {"role": "system", "content": [{"type": "image_url", "image_url": "x"}]},
                    {"role": "user", "content": "hi"},
                ]
            )

    def test_max_tokens_precedence(self) -> None:
        msgs = [{"role": "user", "content": "hi"}]
        assert to_anthropic(msgs, max_tokens=10)["max_tokens"] == 10
        assert to_anthropic(msgs, max_completion_tokens=20)["max_tokens"] == 20
        assert to_anthropic(msgs, max_tokens=10, max_completion_tokens=20)["max_tokens"] == 20

    def test_sampling_stop_stream_user(self) -> None:
        out = to_anthropic(
            [{"role": "user", "content": "hi"}],
            temperature=0.2,
            top_p=0.9,
            stop="END",
            stream=True,
            stream_options={"include_usage": True},
            user="u-1",
            n=1,
            seed=7,
            logprobs=False,
            metadata={"k": "v"},
            store=False,
            response_format={"type": "text"},
            frequency_penalty=0,
            modalities=["text"],
        )
        assert out == {
            "model": UP,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "stream": True,
            "metadata": {"user_id": "u-1"},
        }

    def test_stop_list_and_none(self) -> None:
        msgs = [{"role": "user", "content": "hi"}]
        assert to_anthropic(msgs, stop=["a", "b"])["stop_sequences"] == ["a", "b"]
        assert "stop_sequences" not in to_anthropic(msgs, stop=None)
        assert "stop_sequences" not in to_anthropic(msgs, stop=[])

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"n": 2}, "n=2"),
            ({"logprobs": True}, "logprobs"),
            ({"top_logprobs": 3}, "top_logprobs"),
            ({"logit_bias": {"50256": -100}}, "logit_bias"),
            ({"frequency_penalty": 0.5}, "frequency_penalty"),
            ({"presence_penalty": -1}, "presence_penalty"),
            ({"response_format": {"type": "json_object"}}, "response_format.type 'json_object'"),
            ({"response_format": {"type": "json_schema"}}, "response_format.type 'json_schema'"),
            ({"reasoning_effort": "low"}, "reasoning_effort"),
            ({"modalities": ["text", "audio"]}, "modalities 'audio'"),
            ({"audio": {"voice": "alloy"}}, "audio"),
            ({"functions": []}, "functions"),
            ({"web_search_options": {}}, "web_search_options"),
        ],
    )
    def test_semantic_params_rejected(self, params: JSON, field: str) -> None:
        with pytest.raises(TranslationError) as info:
            to_anthropic([{"role": "user", "content": "hi"}], **params)
        assert field in str(info.value)
        assert "not supported by anthropic models" in str(info.value)

    def test_content_parts_and_images(self) -> None:
        out = to_anthropic(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "text", "text": ""},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x.test/a.jpg", "detail": "high"},
                        },
                    ],
                }
            ]
        )
        assert out["messages"][0]["content"] == [
            {"type": "text", "text": "look"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
            },
            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
        ]

    def test_image_url_as_plain_string(self) -> None:
        out = to_anthropic(
            [{"role": "user", "content": [{"type": "image_url", "image_url": "http://x/a.png"}]}]
        )
        assert out["messages"][0]["content"][0]["source"] == {
            "type": "url",
            "url": "http://x/a.png",
        }

    def test_cache_control_kept_and_prevents_collapse(self) -> None:
        part = {"type": "text", "text": "big", "cache_control": {"type": "ephemeral"}}
        out = to_anthropic([{"role": "user", "content": [part]}])
        assert out["messages"][0]["content"] == [part]

    @pytest.mark.parametrize(
        ("url", "match"),
        [
            ("data:image/svg+xml,<svg/>", "not base64"),
            ("ftp://x/a.png", "must be an http"),
            (None, "must be a string"),
        ],
    )
    def test_bad_image_urls(self, url: Any, match: str) -> None:
        with pytest.raises(TranslationError, match=match) as info:
            to_anthropic(
                [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
            )
        assert "messages[0].content[0].image_url.url" in str(info.value)

    def test_unsupported_part_message_names_field(self) -> None:
        with pytest.raises(TranslationError) as info:
            to_anthropic(
                [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
                ]
            )
        assert str(info.value) == (
            "messages[2].content[0].type 'input_audio' is not supported by anthropic models"
        )

    def test_bad_shapes(self) -> None:
        with pytest.raises(TranslationError, match="messages must be a non-empty list"):
            openai_chat_to_anthropic({"messages": []}, UP)
        with pytest.raises(TranslationError, match="messages must be a non-empty list"):
            openai_chat_to_anthropic({}, UP)
        with pytest.raises(TranslationError, match=r"messages\[0\] must be an object"):
            to_anthropic(["hi"])  # type: ignore[list-item]
        with pytest.raises(TranslationError, match=r"messages\[0\]\.content must be a string"):
            to_anthropic([{"role": "user", "content": 5}])
        with pytest.raises(TranslationError, match=r"messages\[0\]\.role 'function'"):
            to_anthropic([{"role": "function", "name": "f", "content": "x"}])

    def test_system_only_is_rejected(self) -> None:
        with pytest.raises(TranslationError, match="at least one non-empty"):
            to_anthropic([{"role": "system", "content": "s"}])

    def test_none_and_empty_content_messages_dropped_and_neighbours_merged(self) -> None:
        out = to_anthropic(
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": None},
                {"role": "user", "content": "b"},
            ]
        )
        assert out["messages"] == [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            }
        ]

    def test_assistant_tool_calls_and_tool_results_merged(self) -> None:
        out = to_anthropic(
            [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": "checking",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "w", "arguments": '{"city": "Oslo"}'},
                        },
                        {"id": "call_2", "function": {"name": "t", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                {
                    "role": "tool",
                    "tool_call_id": "call_2",
                    "content": [{"type": "text", "text": "12:00"}],
                },
                {"role": "user", "content": "thanks"},
            ]
        )
        assert out["messages"] == [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "call_2", "name": "t", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "rain"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_2",
                        "content": [{"type": "text", "text": "12:00"}],
                    },
                    {"type": "text", "text": "thanks"},
                ],
            },
        ]

    def test_tool_results_moved_before_text_in_merged_user_turn(self) -> None:
        out = to_anthropic(
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "user", "content": "note"},
                {"role": "tool", "tool_call_id": "c", "content": None},
            ]
        )
        assert out["messages"][1]["content"] == [
            {"type": "tool_result", "tool_use_id": "c"},
            {"type": "text", "text": "note"},
        ]

    def test_assistant_refusal_and_refusal_parts(self) -> None:
        out = to_anthropic(
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "refusal": "no"},
                {"role": "user", "content": "q2"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "still no"}]},
            ]
        )
        assert out["messages"][1] == {"role": "assistant", "content": "no"}
        assert out["messages"][3] == {"role": "assistant", "content": "still no"}

    def test_arguments_as_dict_accepted(self) -> None:
        out = to_anthropic(
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}],
                },
            ]
        )
        assert out["messages"][1]["content"][0]["input"] == {"a": 1}

    @pytest.mark.parametrize(
        ("call", "match"),
        [
            (
                {"id": "c", "function": {"name": "f", "arguments": "{oops"}},
                r"arguments is not valid JSON",
            ),
            (
                {"id": "c", "function": {"name": "f", "arguments": "[1]"}},
                r"arguments must encode a JSON object",
            ),
            (
                {"id": "c", "function": {"name": "f", "arguments": 3}},
                r"arguments must be a JSON string",
            ),
            ({"function": {"name": "f"}}, r"tool_calls\[0\]\.id must be a non-empty string"),
            ({"id": "c", "function": {}}, r"tool_calls\[0\]\.function\.name"),
            ({"id": "c"}, r"tool_calls\[0\]\.function must be an object"),
            ({"id": "c", "type": "custom", "custom": {}}, r"tool_calls\[0\]\.type 'custom'"),
        ],
    )
    def test_bad_tool_calls(self, call: JSON, match: str) -> None:
        with pytest.raises(TranslationError, match=match) as info:
            to_anthropic(
                [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [call]}]
            )
        assert str(info.value).startswith("messages[1].tool_calls[0]")

    def test_tool_message_requires_id(self) -> None:
        with pytest.raises(TranslationError, match=r"messages\[0\]\.tool_call_id"):
            to_anthropic([{"role": "tool", "content": "x"}])

    def test_tools_and_tool_choice(self) -> None:
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "w",
                    "description": "weather",
                    "parameters": {"type": "object", "properties": {"c": {"type": "string"}}},
                    "strict": True,
                },
            },
            {"type": "function", "function": {"name": "noargs"}},
        ]
        out = to_anthropic([{"role": "user", "content": "q"}], tools=tools, tool_choice="auto")
        assert out["tools"] == [
            {
                "name": "w",
                "description": "weather",
                "input_schema": {"type": "object", "properties": {"c": {"type": "string"}}},
            },
            {"name": "noargs", "input_schema": {"type": "object", "properties": {}}},
        ]
        assert out["tool_choice"] == {"type": "auto"}

    @pytest.mark.parametrize(
        ("choice", "expected"),
        [
            ("auto", {"type": "auto"}),
            ("required", {"type": "any"}),
            ("none", {"type": "none"}),
            ({"type": "function", "function": {"name": "w"}}, {"type": "tool", "name": "w"}),
        ],
    )
    def test_tool_choice_mapping(self, choice: Any, expected: JSON) -> None:
        tools = [{"type": "function", "function": {"name": "w"}}]
        out = to_anthropic([{"role": "user", "content": "q"}], tools=tools, tool_choice=choice)
        assert out["tool_choice"] == expected

    def test_parallel_tool_calls_false(self) -> None:
        tools = [{"type": "function", "function": {"name": "w"}}]
        msgs = [{"role": "user", "content": "q"}]
        out = to_anthropic(msgs, tools=tools, parallel_tool_calls=False)
        assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
        out = to_anthropic(msgs, tools=tools, tool_choice="required", parallel_tool_calls=False)
        assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
        out = to_anthropic(msgs, tools=tools, tool_choice="none", parallel_tool_calls=False)
        assert out["tool_choice"] == {"type": "none"}
        assert "tool_choice" not in to_anthropic(msgs, parallel_tool_calls=False)
        assert "tool_choice" not in to_anthropic(msgs, tools=tools, parallel_tool_calls=True)

    def test_unsupported_tools_and_choices(self) -> None:
        msgs = [{"role": "user", "content": "q"}]
        with pytest.raises(TranslationError, match=r"tools\[0\]\.type 'custom'"):
            to_anthropic(msgs, tools=[{"type": "custom", "custom": {"name": "x"}}])
        with pytest.raises(TranslationError, match=r"tool_choice 'allowed_tools'"):
            to_anthropic(
                msgs,
                tools=[{"type": "function", "function": {"name": "w"}}],
                tool_choice={"type": "allowed_tools"},
            )
        with pytest.raises(TranslationError, match=r"tool_choice 'sometimes'"):
            to_anthropic(msgs, tool_choice="sometimes")

    def test_input_not_mutated(self) -> None:
        body = {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}]},
                {"role": "user", "content": "b"},
                {"role": "tool", "tool_call_id": "c", "content": "r"},
            ],
            "tools": [{"type": "function", "function": {"name": "w"}}],
            "parallel_tool_calls": False,
        }
        snapshot = copy.deepcopy(body)
        out = openai_chat_to_anthropic(body, UP)
        out["tools"][0]["input_schema"]["mutated"] = True
        assert body == snapshot
        assert openai_chat_to_anthropic(body, UP)["tools"][0]["input_schema"] == {
            "type": "object",
            "properties": {},
        }


# --------------------------------------------------------------------------- anthropic -> openai


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


# --------------------------------------------------------------------------- responses


ANTHROPIC_RESP: JSON = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "...", "signature": "s"},
        {"type": "text", "text": "Hello "},
        {"type": "text", "text": "world"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"q": "é"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 3,
    },
}


class TestResponses:
    def test_anthropic_to_openai_response(self) -> None:
        out = anthropic_to_openai_response(ANTHROPIC_RESP, "gw-model", created=123)
        assert out == {
            "id": "chatcmpl-msg_01",
            "object": "chat.completion",
            "created": 123,
            "model": "gw-model",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Hello world",
                        "refusal": None,
                        "tool_calls": [
                            {
                                "id": "toolu_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"q":"é"}'},
                            }
                        ],
                    },
                    "logprobs": None,
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {
                "prompt_tokens": 113,
                "completion_tokens": 5,
                "total_tokens": 118,
                "prompt_tokens_details": {"cached_tokens": 100},
            },
        }

    def test_anthropic_to_openai_response_sparse(self) -> None:
        out = anthropic_to_openai_response({"id": "m", "content": []}, "g", created=1)
        assert out["choices"][0]["message"]["content"] == ""
        assert out["choices"][0]["finish_reason"] == "stop"
        assert "usage" not in out
        tool_only = {
            "id": "m",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        }
        assert (
            anthropic_to_openai_response(tool_only, "g", 1)["choices"][0]["message"]["content"]
            is None
        )

    @pytest.mark.parametrize(
        ("stop", "finish"),
        [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            (None, "stop"),
            ("brand_new", "stop"),
        ],
    )
    def test_finish_reason_mapping(self, stop: str | None, finish: str) -> None:
        assert finish_reason_from_stop_reason(stop) == finish

    @pytest.mark.parametrize(
        ("finish", "stop"),
        [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("function_call", "tool_use"),
            ("content_filter", "refusal"),
            (None, "end_turn"),
        ],
    )
    def test_stop_reason_mapping(self, finish: str | None, stop: str) -> None:
        assert stop_reason_from_finish_reason(finish) == stop

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

    def test_usage_helpers(self) -> None:
        assert anthropic_usage(ANTHROPIC_RESP) == (113, 5)
        assert anthropic_usage({"usage": {"input_tokens": 4, "output_tokens": 2}}) == (4, 2)
        assert anthropic_usage({}) == (None, None)
        assert anthropic_usage({"usage": {}}) == (None, None)
        assert openai_usage({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4)
        assert openai_usage({"usage": None}) == (None, None)
        assert openai_usage({"usage": {"prompt_tokens": True}}) == (None, None)


class TestErrorMessages:
    def test_openai(self) -> None:
        body = b'{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}'
        assert openai_error_message(body) == "Incorrect API key"
        assert openai_error_message(b'{"error": "model not found"}') == "model not found"
        assert openai_error_message(b'{"error": {"code": 1}}') is None
        assert openai_error_message(b'{"detail": "x"}') is None
        assert openai_error_message(b"<html>502</html>") is None
        assert openai_error_message(b"") is None
        assert openai_error_message(b"[1]") is None

    def test_anthropic(self) -> None:
        body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        assert anthropic_error_message(body) == "Overloaded"
        assert anthropic_error_message(b'{"error":{"message":"no type field"}}') == "no type field"
        assert anthropic_error_message(b'{"type":"message","error":{"message":"x"}}') is None
        assert anthropic_error_message(b'{"type":"error","error":"flat"}') is None
        assert anthropic_error_message(b"not json") is None
        assert anthropic_error_message(b'"str"') is None


# --------------------------------------------------------------------------- properties

_role_turns = st.lists(
    st.tuples(st.sampled_from(["user", "assistant"]), st.text(min_size=1, max_size=30)),
    min_size=1,
    max_size=8,
)


def _texts_by_role(messages: list[JSON]) -> list[tuple[str, str]]:
    """Collapse a chat to (role, text) turns, merging same-role neighbours like anthropic does."""
    turns: list[tuple[str, str]] = []
    for m in messages:
        content = m["content"]
        text = content if isinstance(content, str) else "".join(p["text"] for p in content)
        if turns and turns[-1][0] == m["role"]:
            turns[-1] = (m["role"], turns[-1][1] + text)
        else:
            turns.append((m["role"], text))
    return turns


@given(system=st.text(max_size=30), turns=_role_turns)
def test_openai_anthropic_openai_keeps_text(system: str, turns: list[tuple[str, str]]) -> None:
    messages: list[JSON] = [{"role": "system", "content": system}] if system else []
    messages += [{"role": role, "content": text} for role, text in turns]
    anthropic = openai_chat_to_anthropic({"messages": messages}, UP)
    back = anthropic_to_openai_request(anthropic, "gpt")
    back_msgs = back["messages"]
    if system:
        assert back_msgs[0] == {"role": "system", "content": system}
        back_msgs = back_msgs[1:]
    assert _texts_by_role(back_msgs) == _texts_by_role(
        [{"role": r, "content": t} for r, t in turns]
    )
    assert orjson.loads(orjson.dumps(anthropic)) == anthropic  # stays JSON-serializable


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(args=st.dictionaries(st.text(max_size=8), _json_values, max_size=4))
def test_tool_arguments_round_trip(args: JSON) -> None:
    anthropic_resp = {
        "id": "m",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": args}],
        "stop_reason": "tool_use",
    }
    openai_resp = anthropic_to_openai_response(anthropic_resp, "g", created=0)
    back = openai_to_anthropic_response(openai_resp, "g")
    assert back["content"] == [{"type": "tool_use", "id": "t", "name": "f", "input": args}]
    assert back["stop_reason"] == "tool_use"
