from __future__ import annotations

import copy
import itertools

import orjson
from hypothesis import given
from hypothesis import strategies as st

from trimtab.providers.accumulate import AnthropicStreamAccumulator, OpenAIStreamAccumulator
from trimtab.providers.translate import JSON

BASE: JSON = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 9, "model": "gpt-x"}


def chunk(delta: JSON, finish: str | None = None, index: int = 0) -> JSON:
    return {**BASE, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def feed_openai(chunks: list[JSON]) -> OpenAIStreamAccumulator:
    acc = OpenAIStreamAccumulator()
    for c in chunks:
        acc.add(c)
    return acc


def feed_anthropic(events: list[JSON]) -> AnthropicStreamAccumulator:
    acc = AnthropicStreamAccumulator()
    for e in events:
        acc.add(e)
    return acc


def message_start(usage: JSON | None = None) -> JSON:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage if usage is not None else {"input_tokens": 10, "output_tokens": 1},
        },
    }


def block_start(index: int, block: JSON) -> JSON:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: JSON) -> JSON:
    return {"type": "content_block_delta", "index": index, "delta": delta}


# --------------------------------------------------------------------------- openai


class TestOpenAIStreamAccumulator:
    def test_text_and_usage(self) -> None:
        acc = feed_openai(
            [
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hel"}),
                chunk({"content": "lo"}),
                chunk({}, "stop"),
                {
                    **BASE,
                    "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                },
            ]
        )
        assert acc.result() == {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 9,
            "model": "gpt-x",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        assert (acc.input_tokens, acc.output_tokens) == (3, 2)
        assert acc.finish_reasons == ["stop"]
        assert (acc.response_id, acc.response_model) == ("chatcmpl-1", "gpt-x")

    def test_empty_accumulator(self) -> None:
        acc = OpenAIStreamAccumulator()
        assert (acc.input_tokens, acc.output_tokens, acc.response_id, acc.response_model) == (
            None,
        ) * 4
        assert acc.finish_reasons == []
        assert acc.result()["choices"] == []
        assert "usage" not in acc.result()

    def test_tokens_none_until_usage_chunk(self) -> None:
        acc = feed_openai([{**chunk({"content": "x"}), "usage": None}])
        assert (acc.input_tokens, acc.output_tokens) == (None, None)

    def test_tool_calls_by_index(self) -> None:
        acc = feed_openai(
            [
                chunk({"role": "assistant", "content": None}),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "a",
                                "type": "function",
                                "function": {"name": "f", "arguments": ""},
                            }
                        ]
                    }
                ),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": "b",
                                "type": "function",
                                "function": {"name": "g", "arguments": "{"},
                            }
                        ]
                    }
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
                chunk({"tool_calls": [{"index": 1, "function": {"arguments": "}"}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
                chunk({}, "tool_calls"),
            ]
        )
        message = acc.result()["choices"][0]["message"]
        assert message["content"] is None
        assert message["tool_calls"] == [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
        ]
        assert acc.finish_reasons == ["tool_calls"]

    def test_repeated_ids_and_reused_index(self) -> None:
        acc = feed_openai(
            [
                chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}
                        ]
                    }
                ),
                chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "a", "function": {"name": "f", "arguments": "}"}}
                        ]
                    }
                ),
                chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "b", "function": {"name": "g", "arguments": "[]"}}
                        ]
                    }
                ),
            ]
        )
        calls = acc.result()["choices"][0]["message"]["tool_calls"]
        assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
            ("a", "f", "{}"),
            ("b", "g", "[]"),
        ]

    def test_id_arriving_late_is_kept(self) -> None:
        acc = feed_openai(
            [
                chunk({"tool_calls": [{"index": 0, "function": {"name": "f"}}]}),
                chunk(
                    {"tool_calls": [{"index": 0, "id": "late", "function": {"arguments": "{}"}}]}
                ),
            ]
        )
        call = acc.result()["choices"][0]["message"]["tool_calls"][0]
        assert call["id"] == "late"
        assert call["function"] == {"name": "f", "arguments": "{}"}

    def test_text_plus_tool_keeps_text(self) -> None:
        acc = feed_openai(
            [
                chunk({"role": "assistant", "content": "Let me check"}),
                chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}
                        ]
                    }
                ),
            ]
        )
        assert acc.result()["choices"][0]["message"]["content"] == "Let me check"

    def test_multiple_choices_and_refusal(self) -> None:
        acc = feed_openai(
            [
                chunk({"role": "assistant", "content": "b"}, index=1),
                chunk({"role": "assistant", "refusal": "I can"}, index=0),
                chunk({"refusal": "'t"}, "content_filter", index=0),
                chunk({}, "length", index=1),
            ]
        )
        result = acc.result()
        assert [c["index"] for c in result["choices"]] == [0, 1]
        assert result["choices"][0]["message"]["refusal"] == "I can't"
        assert result["choices"][0]["message"]["content"] is None
        assert result["choices"][1]["message"]["content"] == "b"
        assert acc.finish_reasons == ["content_filter", "length"]

    def test_odd_chunks_are_tolerated(self) -> None:
        acc = feed_openai(
            [
                {"id": "x", "choices": None},
                {"choices": [{"delta": None}]},
                {"choices": [{"index": 0, "delta": {"content": None, "tool_calls": None}}]},
                {"choices": [{"delta": {"content": "ok"}}]},
            ]
        )
        result = acc.result()
        assert result["id"] == "x"
        assert result["choices"][0]["message"]["content"] == "ok"

    def test_chunks_not_mutated(self) -> None:
        chunks = [
            chunk({"role": "assistant", "content": "a"}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        ]
        snapshot = copy.deepcopy(chunks)
        feed_openai(chunks).result()
        assert chunks == snapshot


@given(st.lists(st.text(max_size=20), max_size=30))
def test_openai_content_is_the_concatenation_of_deltas(deltas: list[str]) -> None:
    acc = feed_openai(
        [chunk({"role": "assistant", "content": ""}), *(chunk({"content": d}) for d in deltas)]
    )
    assert acc.result()["choices"][0]["message"]["content"] == "".join(deltas)


@given(st.lists(st.tuples(st.integers(0, 3), st.text(max_size=8)), max_size=40))
def test_openai_tool_arguments_concatenate_per_index(fragments: list[tuple[int, str]]) -> None:
    chunks = [
        chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "function": {"name": f"f{i}"}}]})
        for i in range(4)
    ]
    chunks += [
        chunk({"tool_calls": [{"index": i, "function": {"arguments": text}}]})
        for i, text in fragments
    ]
    calls = feed_openai(chunks).result()["choices"][0]["message"]["tool_calls"]
    for i, call in enumerate(calls):
        assert call["id"] == f"call_{i}"
        assert call["function"]["arguments"] == "".join(t for j, t in fragments if j == i)


# --------------------------------------------------------------------------- anthropic


class TestAnthropicStreamAccumulator:
    def test_full_message(self) -> None:
        acc = feed_anthropic(
            [
                message_start(
                    {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}
                ),
                block_start(0, {"type": "thinking", "thinking": ""}),
                block_delta(0, {"type": "thinking_delta", "thinking": "hmm "}),
                block_delta(0, {"type": "thinking_delta", "thinking": "ok"}),
                block_delta(0, {"type": "signature_delta", "signature": "sig"}),
                {"type": "content_block_stop", "index": 0},
                block_start(1, {"type": "text", "text": ""}),
                {"type": "ping"},
                block_delta(1, {"type": "text_delta", "text": "Hi "}),
                block_delta(1, {"type": "text_delta", "text": "there"}),
                {"type": "content_block_stop", "index": 1},
                block_start(2, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
                block_delta(2, {"type": "input_json_delta", "partial_json": ""}),
                block_delta(2, {"type": "input_json_delta", "partial_json": '{"a": '}),
                block_delta(2, {"type": "input_json_delta", "partial_json": "[1]}"}),
                {"type": "content_block_stop", "index": 2},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": 30},
                },
                {"type": "message_stop"},
            ]
        )
        assert acc.result() == {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm ok", "signature": "sig"},
                {"type": "text", "text": "Hi there"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 30},
        }
        assert (acc.input_tokens, acc.output_tokens) == (15, 30)
        assert acc.finish_reasons == ["tool_use"]
        assert (acc.response_id, acc.response_model) == ("msg_1", "claude-x")
        assert acc.error is None

    def test_empty_accumulator(self) -> None:
        acc = AnthropicStreamAccumulator()
        assert (acc.input_tokens, acc.output_tokens, acc.response_id, acc.response_model) == (
            None,
        ) * 4
        assert acc.finish_reasons == []
        result = acc.result()
        assert result["content"] == []
        assert result["usage"] == {}

    def test_invalid_tool_json_kept_raw(self) -> None:
        acc = feed_anthropic(
            [
                message_start(),
                block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
                block_delta(0, {"type": "input_json_delta", "partial_json": '{"a": tru'}),
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "max_tokens"},
                    "usage": {"output_tokens": 8},
                },
            ]
        )
        assert acc.result()["content"][0]["input"] == '{"a": tru'
        assert acc.finish_reasons == ["max_tokens"]

    def test_tool_without_deltas_keeps_start_input(self) -> None:
        acc = feed_anthropic(
            [
                message_start(),
                block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
            ]
        )
        assert acc.result()["content"][0]["input"] == {}
        acc = feed_anthropic(
            [message_start(), block_start(0, {"type": "tool_use", "id": "t", "name": "f"})]
        )
        assert acc.result()["content"][0]["input"] == {}

    def test_delta_usage_updates_cumulatively_and_ignores_nulls(self) -> None:
        acc = feed_anthropic(
            [
                message_start(
                    {"input_tokens": 10, "cache_creation_input_tokens": 4, "output_tokens": 1}
                ),
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {
                        "input_tokens": 10,
                        "cache_creation_input_tokens": None,
                        "output_tokens": 12,
                    },
                },
            ]
        )
        assert acc.input_tokens == 14
        assert acc.output_tokens == 12

    def test_stop_sequence_recorded(self) -> None:
        acc = feed_anthropic(
            [
                message_start(),
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                },
            ]
        )
        assert acc.result()["stop_sequence"] == "END"

    def test_delta_without_start_infers_block(self) -> None:
        acc = feed_anthropic(
            [
                block_delta(0, {"type": "text_delta", "text": "x"}),
                block_delta(1, {"type": "input_json_delta", "partial_json": "{}"}),
                block_delta(2, {"type": "citations_delta", "citation": {"cited_text": "c"}}),
                block_delta(2, {"type": "citations_delta", "citation": {"cited_text": "d"}}),
                block_delta(3, {"type": "unknown_delta"}),
            ]
        )
        assert acc.result()["content"] == [
            {"type": "text", "text": "x"},
            {"type": "tool_use", "input": {}},
            {"type": "text", "citations": [{"cited_text": "c"}, {"cited_text": "d"}]},
        ]
        assert acc.input_tokens is None

    def test_error_event_recorded(self) -> None:
        acc = feed_anthropic(
            [
                message_start(),
                {"type": "error", "error": {"type": "overloaded_error", "message": "x"}},
            ]
        )
        assert acc.error == {"type": "overloaded_error", "message": "x"}

    def test_events_not_mutated_and_result_repeatable(self) -> None:
        events = [
            message_start(),
            block_start(0, {"type": "text", "text": "pre-"}),
            block_delta(0, {"type": "text_delta", "text": "x"}),
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 3},
            },
        ]
        snapshot = copy.deepcopy(events)
        acc = feed_anthropic(events)
        first = acc.result()
        assert first["content"] == [{"type": "text", "text": "pre-x"}]
        assert acc.result() == first
        assert events == snapshot


@given(st.lists(st.text(max_size=20), max_size=30))
def test_anthropic_text_is_the_concatenation_of_deltas(deltas: list[str]) -> None:
    events = [message_start(), block_start(0, {"type": "text", "text": ""})]
    events += [block_delta(0, {"type": "text_delta", "text": d}) for d in deltas]
    assert feed_anthropic(events).result()["content"] == [{"type": "text", "text": "".join(deltas)}]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=6),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=12,
    ).map(lambda v: {"v": v}),
    st.lists(st.integers(0, 10_000), max_size=8),
)
def test_anthropic_tool_input_survives_any_fragmentation(value: JSON, cuts: list[int]) -> None:
    text = orjson.dumps(value).decode()
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    events = [
        message_start(),
        block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
    ]
    events += [
        block_delta(0, {"type": "input_json_delta", "partial_json": text[a:b]})
        for a, b in itertools.pairwise(bounds)
    ]
    assert feed_anthropic(events).result()["content"][0]["input"] == value
