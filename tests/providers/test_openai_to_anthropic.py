"""An OpenAI Chat Completions request to an Anthropic Messages upstream, and its answer back
(trimtab.providers.openai_to_anthropic)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.providers.support import ANTHROPIC_RESP, UP
from trimtab.providers.openai_to_anthropic import (
    anthropic_to_openai_response,
    openai_chat_to_anthropic,
)
from trimtab.providers.translate import (
    JSON,
    TranslationError,
)


def to_anthropic(messages: list[JSON], **params: Any) -> JSON:
    return openai_chat_to_anthropic({"model": "gw-model", "messages": messages, **params}, UP)


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


class TestAnthropicToOpenAIResponse:
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
