"""The mock upstream's Anthropic side: messages, whole and streamed."""

from __future__ import annotations

from typing import Any

from trimtab.testing.mock_replies import Finish, Reply, sse

ANTHROPIC_STOP: dict[Finish, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool": "tool_use",
    "refusal": "refusal",
}


def anthropic_message(reply: Reply) -> dict[str, Any]:
    """A non-streaming Anthropic message."""
    block: dict[str, Any]
    if reply.tool_name is not None:
        block = {
            "type": "tool_use",
            "id": f"toolu_mock_{reply.n}",
            "name": reply.tool_name,
            "input": dict(reply.tool_input),
        }
    else:
        block = {"type": "text", "text": reply.text}
    return {
        "id": f"msg_mock_{reply.n}",
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [block],
        "stop_reason": ANTHROPIC_STOP[reply.finish],
        "stop_sequence": None,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }


def anthropic_events(reply: Reply) -> list[tuple[bytes, bool]]:
    """Anthropic stream events as (SSE bytes, is-content) pairs, ending with ``message_stop``."""

    def event(obj: dict[str, Any]) -> bytes:
        return sse(obj, event=str(obj["type"]))

    start = anthropic_message(reply)
    start.update(content=[], stop_reason=None)
    start["usage"] = {"input_tokens": reply.prompt_tokens, "output_tokens": 1}
    block: dict[str, Any]
    if reply.tool_name is not None:
        block = {
            "type": "tool_use",
            "id": f"toolu_mock_{reply.n}",
            "name": reply.tool_name,
            "input": {},
        }
    else:
        block = {"type": "text", "text": ""}
    events: list[tuple[bytes, bool]] = [
        (event({"type": "message_start", "message": start}), False),
        (event({"type": "content_block_start", "index": 0, "content_block": block}), False),
    ]
    for piece in reply.pieces:
        delta = (
            {"type": "input_json_delta", "partial_json": piece}
            if reply.tool_name is not None
            else {"type": "text_delta", "text": piece}
        )
        events.append((event({"type": "content_block_delta", "index": 0, "delta": delta}), True))
    stop = {"stop_reason": ANTHROPIC_STOP[reply.finish], "stop_sequence": None}
    events += [
        (event({"type": "content_block_stop", "index": 0}), False),
        (
            event(
                {
                    "type": "message_delta",
                    "delta": stop,
                    "usage": {"output_tokens": reply.completion_tokens},
                }
            ),
            False,
        ),
        (event({"type": "message_stop"}), False),
    ]
    return events
