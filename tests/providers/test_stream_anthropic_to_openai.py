"""An Anthropic event stream translated, event by event, into OpenAI chunks."""

from __future__ import annotations

import orjson
import pytest

from tests.providers.streams import anthropic_events, run_a2o
from trimtab.providers.stream_translate import AnthropicToOpenAIStream, UpstreamStreamError


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
