"""Streams the stream-translation tests feed: a realistic Anthropic event stream and OpenAI
chunk stream (text, optionally one tool call, usage), and each translator run over one."""

from __future__ import annotations

from trimtab.providers.stream_translate import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from trimtab.providers.translate import JSON


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
