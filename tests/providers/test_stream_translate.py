from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimtab.providers.accumulate import AnthropicStreamAccumulator, OpenAIStreamAccumulator
from trimtab.providers.anthropic_to_openai import openai_to_anthropic_response
from trimtab.providers.openai_to_anthropic import anthropic_to_openai_response
from trimtab.providers.stream_translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    UpstreamStreamError,
)
from trimtab.providers.translate import JSON

# --------------------------------------------------------------------------- fixtures


def anthropic_events(
    texts: list[str],
    tool_json: list[str] | None = None,
    stop_reason: str = "end_turn",
    usage: JSON | None = None,
) -> list[JSON]:
    """A realistic Anthropic stream: one text block, then optionally one tool_use block."""
    start_usage = usage or {"input_tokens": 25, "output_tokens": 1}
    events: list[JSON] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_abc",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
        for t in texts
    ]
    events.append({"type": "content_block_stop", "index": 0})
    if tool_json is not None:
        events.append(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}},
            }
        )
        events += [
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in tool_json
        ]
        events.append({"type": "content_block_stop", "index": 1})
    events += [
        {
            "type": "message_delta",
            "delta": {"type": "message_delta", "stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 42},
        },
        {"type": "message_stop"},
    ]
    return events


def openai_chunks(
    texts: list[str],
    tool_fragments: list[str] | None = None,
    finish_reason: str = "stop",
    usage: bool = True,
) -> list[JSON]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 9, "model": "gpt-x"}

    def chunk(delta: JSON, finish: str | None = None) -> JSON:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": t}) for t in texts]
    if tool_fragments is not None:
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get", "arguments": ""},
                        }
                    ]
                }
            )
        )
        chunks += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]})
            for f in tool_fragments
        ]
    chunks.append(chunk({}, finish_reason))
    if usage:
        chunks.append(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }
        )
    return chunks


def run_a2o(
    events: list[JSON], include_usage: bool = True
) -> tuple[AnthropicToOpenAIStream, list[JSON]]:
    tr = AnthropicToOpenAIStream("gw-model", created=1000, include_usage=include_usage)
    out: list[JSON] = []
    for e in events:
        out += tr.feed(e)
    return tr, out


def run_o2a(chunks: list[JSON]) -> tuple[OpenAIToAnthropicStream, list[tuple[str, JSON]]]:
    tr = OpenAIToAnthropicStream("gw-model", "msg_gw1")
    out: list[tuple[str, JSON]] = []
    for c in chunks:
        out += tr.feed(c)
    out += tr.finish()
    return tr, out


# --------------------------------------------------------------------------- anthropic -> openai


class TestAnthropicToOpenAIStream:
    def test_text_stream(self) -> None:
        tr, chunks = run_a2o(anthropic_events(["Hel", "lo"]))
        assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
            {"role": "assistant", "content": ""},
            {"content": "Hel"},
            {"content": "lo"},
            {},
            None,
        ]
        assert {c["id"] for c in chunks} == {"chatcmpl-msg_abc"}
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert all(c["model"] == "gw-model" and c["created"] == 1000 for c in chunks)
        assert chunks[3]["choices"][0]["finish_reason"] == "stop"
        assert chunks[0]["choices"][0]["finish_reason"] is None
        assert all(c["usage"] is None for c in chunks[:-1])
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"] == {
            "prompt_tokens": 25,
            "completion_tokens": 42,
            "total_tokens": 67,
        }
        assert (tr.input_tokens, tr.output_tokens) == (25, 42)
        assert tr.finish_reason == "stop"
        assert tr.stop_reason == "end_turn"

    def test_without_usage(self) -> None:
        _, chunks = run_a2o(anthropic_events(["x"]), include_usage=False)
        assert all(c["choices"] for c in chunks)
        assert all("usage" not in c for c in chunks)

    def test_tool_use_stream(self) -> None:
        tr, chunks = run_a2o(anthropic_events(["ok"], ['{"q": ', '"x"}'], stop_reason="tool_use"))
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        assert deltas[2] == {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get", "arguments": ""},
                }
            ]
        }
        assert deltas[3] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]}
        assert deltas[4] == {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}
        assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
        assert tr.finish_reason == "tool_calls"

    def test_tool_indices_count_tools_not_blocks(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, False)
        tr.feed({"type": "message_start", "message": {"id": "x", "usage": {}}})
        tr.feed(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            }
        )
        tr.feed(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            }
        )
        tr.feed(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "s"},
            }
        )
        out = tr.feed(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "a", "name": "f"},
            }
        )
        assert out[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
        out = tr.feed(
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "b", "name": "g"},
            }
        )
        assert out[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 1
        out = tr.feed(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "{}"},
            }
        )
        assert out[0]["choices"][0]["delta"]["tool_calls"] == [
            {"index": 0, "function": {"arguments": "{}"}}
        ]
        # empty partial_json fragments and fragments for unknown blocks emit nothing
        assert (
            tr.feed(
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "input_json_delta", "partial_json": ""},
                }
            )
            == []
        )
        assert (
            tr.feed(
                {
                    "type": "content_block_delta",
                    "index": 7,
                    "delta": {"type": "input_json_delta", "partial_json": "x"},
                }
            )
            == []
        )

    def test_cache_tokens_and_cumulative_delta_usage(self) -> None:
        events = anthropic_events(
            ["a"],
            usage={
                "input_tokens": 5,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
                "output_tokens": 1,
            },
        )
        events[-2]["usage"] = {
            "input_tokens": 6,
            "cache_read_input_tokens": None,
            "output_tokens": 9,
        }
        tr, chunks = run_a2o(events)
        assert tr.input_tokens == 126
        assert tr.output_tokens == 9
        assert chunks[-1]["usage"] == {
            "prompt_tokens": 126,
            "completion_tokens": 9,
            "total_tokens": 135,
            "prompt_tokens_details": {"cached_tokens": 100},
        }

    def test_tokens_unknown_before_message_start(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, True)
        assert (tr.input_tokens, tr.output_tokens, tr.finish_reason, tr.stop_reason) == (
            None,
            None,
            None,
            None,
        )

    def test_error_event_raises(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, True)
        tr.feed(anthropic_events([])[0])
        with pytest.raises(UpstreamStreamError) as info:
            tr.feed(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            )
        assert info.value.message == "Overloaded"
        assert info.value.error_type == "overloaded_error"
        assert str(info.value) == "Overloaded"
        with pytest.raises(UpstreamStreamError, match="upstream stream error"):
            tr.feed({"type": "error"})

    def test_ping_unknown_and_block_stop_emit_nothing(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, True)
        tr.feed(anthropic_events([])[0])
        assert tr.feed({"type": "ping"}) == []
        assert tr.feed({"type": "content_block_stop", "index": 0}) == []
        assert tr.feed({"type": "brand_new_event"}) == []
        assert (
            tr.feed(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": ""},
                }
            )
            == []
        )

    def test_missing_message_start_still_opens_with_role(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, False)
        out = tr.feed(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "x"},
            }
        )
        assert [c["choices"][0]["delta"] for c in out] == [
            {"role": "assistant", "content": ""},
            {"content": "x"},
        ]

    def test_message_stop_without_stop_reason_still_finishes(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, False)
        tr.feed(anthropic_events([])[0])
        out = tr.feed({"type": "message_stop"})
        assert out[0]["choices"][0]["finish_reason"] == "stop"

    def test_only_one_finish_chunk(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, False)
        tr.feed(anthropic_events([])[0])
        first = tr.feed(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "pause_turn"},
                "usage": {"output_tokens": 3},
            }
        )
        second = tr.feed(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 5},
            }
        )
        assert len(first) == 1
        assert second == []
        assert tr.feed({"type": "message_stop"}) == []
        assert tr.output_tokens == 5
        assert tr.stop_reason == "end_turn"

    def test_text_in_block_start_is_emitted(self) -> None:
        tr = AnthropicToOpenAIStream("m", 0, False)
        tr.feed(anthropic_events([])[0])
        out = tr.feed(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": "pre"},
            }
        )
        assert out[0]["choices"][0]["delta"] == {"content": "pre"}

    def test_chunks_are_json_serializable(self) -> None:
        _, chunks = run_a2o(anthropic_events(["a"], ["{}"], "tool_use"))
        for c in chunks:
            assert orjson.loads(orjson.dumps(c)) == c


# --------------------------------------------------------------------------- openai -> anthropic


class TestOpenAIToAnthropicStream:
    def test_text_stream(self) -> None:
        tr, events = run_o2a(openai_chunks(["Hel", "lo"]))
        names = [name for name, _ in events]
        assert names == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert all(data["type"] == name for name, data in events)
        start = events[0][1]["message"]
        assert start["id"] == "msg_gw1"
        assert start["model"] == "gw-model"
        assert start["usage"] == {"input_tokens": 0, "output_tokens": 0}
        assert events[1][1] == {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        assert events[2][1]["delta"] == {"type": "text_delta", "text": "Hel"}
        assert events[4][1] == {"type": "content_block_stop", "index": 0}
        assert events[5][1] == {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"input_tokens": 11, "output_tokens": 7},
        }
        assert (tr.input_tokens, tr.output_tokens) == (11, 7)
        assert tr.finish_reason == "stop"
        assert tr.stop_reason == "end_turn"

    def test_tool_call_stream(self) -> None:
        tr, events = run_o2a(openai_chunks(["ok"], ['{"q":', ' "x"}'], "tool_calls"))
        names = [name for name, _ in events]
        assert names == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert events[4][1]["content_block"] == {
            "type": "tool_use",
            "id": "call_1",
            "name": "get",
            "input": {},
        }
        assert events[4][1]["index"] == 1
        assert events[5][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"q":'}
        assert events[7][1]["index"] == 1
        assert events[8][1]["delta"]["stop_reason"] == "tool_use"
        assert tr.stop_reason == "tool_use"

    def test_parallel_tool_calls_and_repeated_ids(self) -> None:
        def tc(**kw: Any) -> JSON:
            return {"choices": [{"index": 0, "delta": {"tool_calls": [kw]}}]}

        tr = OpenAIToAnthropicStream("m", "msg_1")
        events: list[tuple[str, JSON]] = []
        events += tr.feed(tc(index=0, id="a", function={"name": "f", "arguments": '{"x":'}))
        events += tr.feed(tc(index=0, id="a", function={"arguments": "1}"}))  # id repeated
        events += tr.feed(
            tc(index=0, id="b", function={"name": "g", "arguments": "{}"})
        )  # index reused
        events += tr.feed(tc(index=1, id="c", function={"name": "h"}))
        events += tr.finish()
        starts = [d["content_block"] for n, d in events if n == "content_block_start"]
        assert [(b["id"], b["name"]) for b in starts] == [("a", "f"), ("b", "g"), ("c", "h")]
        deltas = [
            (d["index"], d["delta"]["partial_json"])
            for n, d in events
            if n == "content_block_delta"
        ]
        assert deltas == [(0, '{"x":'), (0, "1}"), (1, "{}")]
        stops = [d["index"] for n, d in events if n == "content_block_stop"]
        assert stops == [0, 1, 2]

    def test_tool_call_without_id_gets_one(self) -> None:
        tr = OpenAIToAnthropicStream("m", "msg_1")
        out = tr.feed(
            {
                "choices": [
                    {"delta": {"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}
                ]
            }
        )
        block = out[1][1]["content_block"]
        assert block["id"] == "toolu_msg_1_0"
        assert block["name"] == "f"

    def test_text_after_tool_opens_new_block(self) -> None:
        tr = OpenAIToAnthropicStream("m", "msg_1")
        events = tr.feed(
            {
                "choices": [
                    {"delta": {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}}
                ]
            }
        )
        events += tr.feed({"choices": [{"delta": {"content": "after"}}]})
        assert [(n, d.get("index")) for n, d in events] == [
            ("message_start", None),
            ("content_block_start", 0),
            ("content_block_stop", 0),
            ("content_block_start", 1),
            ("content_block_delta", 1),
        ]

    def test_refusal_delta_becomes_text(self) -> None:
        tr = OpenAIToAnthropicStream("m", "msg_1")
        out = tr.feed(
            {"choices": [{"delta": {"refusal": "no"}, "finish_reason": "content_filter"}]}
        )
        assert out[-1][1]["delta"] == {"type": "text_delta", "text": "no"}
        assert tr.finish()[-2][1]["delta"]["stop_reason"] == "refusal"

    def test_usage_before_start_and_other_choices_ignored(self) -> None:
        tr = OpenAIToAnthropicStream("m", "msg_1")
        out = tr.feed({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 0}})
        assert out[0][1]["message"]["usage"] == {"input_tokens": 4, "output_tokens": 0}
        assert tr.feed({"choices": [{"index": 1, "delta": {"content": "other"}}]}) == []
        assert tr.feed({"choices": [{"index": 0, "delta": {}}], "usage": None}) == []

    def test_finish_without_chunks_and_idempotent(self) -> None:
        tr = OpenAIToAnthropicStream("m", "msg_1")
        events = tr.finish()
        assert [n for n, _ in events] == ["message_start", "message_delta", "message_stop"]
        assert events[1][1]["usage"] == {"output_tokens": 0}
        assert events[1][1]["delta"]["stop_reason"] == "end_turn"
        assert tr.finish() == []
        assert (tr.input_tokens, tr.output_tokens, tr.finish_reason, tr.stop_reason) == (
            None,
            None,
            None,
            None,
        )

    def test_length_maps_to_max_tokens(self) -> None:
        tr, events = run_o2a(openai_chunks(["a"], finish_reason="length", usage=False))
        assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"
        assert events[-2][1]["usage"] == {"output_tokens": 0}
        assert tr.input_tokens is None


# --------------------------------------------------------------------------- properties

_fragments = st.lists(st.text(max_size=12), max_size=12)
_args = st.dictionaries(
    st.text(max_size=6),
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.booleans(), st.none()),
    max_size=4,
)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@given(texts=_fragments, args=_args, cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_anthropic_stream_translates_like_the_non_streaming_response(
    texts: list[str], args: JSON, cuts: list[int]
) -> None:
    events = anthropic_events(texts, _split(orjson.dumps(args).decode(), cuts), "tool_use")
    anthropic_acc = AnthropicStreamAccumulator()
    openai_acc = OpenAIStreamAccumulator()
    tr = AnthropicToOpenAIStream("gw-model", created=1000, include_usage=True)
    for event in events:
        anthropic_acc.add(event)
        for chunk in tr.feed(event):
            openai_acc.add(chunk)
    expected = anthropic_to_openai_response(anthropic_acc.result(), "gw-model", created=1000)
    got = openai_acc.result()
    exp_msg, got_msg = expected["choices"][0]["message"], got["choices"][0]["message"]
    assert got_msg["content"] == exp_msg["content"] == ("".join(texts) or None)
    assert orjson.loads(got_msg["tool_calls"][0]["function"]["arguments"]) == args
    assert got_msg["tool_calls"][0]["id"] == exp_msg["tool_calls"][0]["id"]
    assert got["choices"][0]["finish_reason"] == expected["choices"][0]["finish_reason"]
    assert got["usage"] == expected["usage"]
    assert got["id"] == expected["id"]


@given(texts=_fragments, args=_args, cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_openai_stream_translates_like_the_non_streaming_response(
    texts: list[str], args: JSON, cuts: list[int]
) -> None:
    chunks = openai_chunks(texts, _split(orjson.dumps(args).decode(), cuts), "tool_calls")
    openai_acc = OpenAIStreamAccumulator()
    anthropic_acc = AnthropicStreamAccumulator()
    tr = OpenAIToAnthropicStream("gw-model", "msg_gw1")
    for chunk in chunks:
        openai_acc.add(chunk)
        for _, event in tr.feed(chunk):
            anthropic_acc.add(event)
    for _, event in tr.finish():
        anthropic_acc.add(event)
    expected = openai_to_anthropic_response(openai_acc.result(), "gw-model")
    got = anthropic_acc.result()
    assert got["content"] == expected["content"]
    assert got["stop_reason"] == expected["stop_reason"] == "tool_use"
    assert got["usage"] == expected["usage"] == {"input_tokens": 11, "output_tokens": 7}
    assert got["model"] == "gw-model"
