"""What the mock upstream tests share: the prompt and its reply, a weather tool in each wire
format, request bodies, and parsers of the two streaming formats."""

from __future__ import annotations

import json
from typing import Any

PROMPT = "what is the capital of france"
REPLY = "mock reply to: what is the capital of france"
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def chat(model: str = "gpt-mock", text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    """An OpenAI chat request body."""
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def msg(model: str = "claude-mock", text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    """An Anthropic messages request body."""
    body: dict[str, Any] = {"model": model, "max_tokens": 256}
    body.update(messages=[{"role": "user", "content": text}], **extra)
    return body


def openai_chunks(raw: str) -> list[Any]:
    """Parse an OpenAI SSE body into chunk objects (``"[DONE]"`` kept as a string)."""
    out: list[Any] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def anthropic_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse an Anthropic SSE body into (event name, data) pairs."""
    out: list[tuple[str, dict[str, Any]]] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[len("data: ") :])
        assert data["type"] == event_line[len("event: ") :]
        out.append((data["type"], data))
    return out
