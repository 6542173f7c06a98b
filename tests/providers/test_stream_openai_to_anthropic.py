"""An OpenAI chunk stream translated, chunk by chunk, into Anthropic events."""

from __future__ import annotations

from typing import Any

from tests.providers.streams import openai_chunks, run_o2a
from trimtab.providers.stream_translate import OpenAIToAnthropicStream
from trimtab.providers.translate import JSON


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
