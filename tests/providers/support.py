"""What the translation tests share: the upstream model name, a whole Anthropic response."""

from __future__ import annotations

from trimtab.providers.translate import JSON

UP = "claude-up"


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
