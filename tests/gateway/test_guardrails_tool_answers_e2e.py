"""Output redaction of PII inside the answer's tool call, end to end: the mock provider's
`echo-tool` model answers with a tool call whose arguments echo the user's text (OpenAI
`tool_calls[].function.arguments`, Anthropic `tool_use.input`; streamed as argument deltas
and `input_json_delta` seven characters at a time, so each value spans several events). The
official SDKs, through a real server, whole and streamed, receive the call with
placeholders, and the stored record holds no byte of the values."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.gateway.support import openai_client, sent_with
from tests.support import APP_KEY, ROUTE_KEYS, GatewayFactory, Running, base_config, stored
from trimtab.testing.mock_upstream import MockUpstream

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
REDACTED = "mail <EMAIL_1> the receipt for card <CREDIT_CARD_1>, ref {marker}"
LOOKUP_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "file_receipt",
        "description": "File a receipt",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
}
LOOKUP_ANTHROPIC: Any = {
    "name": "file_receipt",
    "description": "File a receipt",
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


@pytest.fixture
def redacting(gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path) -> Running:
    """An output-only policy: the provider sees the values, the client and the store not."""
    models = base_config(upstream.url, "sqlite://", tmp_path / "unused")["models"]
    models["gpt-echo-tool"] = {"provider": "upstream", "model": "echo-tool"}
    models["claude-echo-tool"] = {"provider": "claude", "model": "echo-tool"}
    policy = {"output": {"pii": {"action": "redact"}}}
    return gateway(keys=ROUTE_KEYS, guardrails=policy, models=models)


def asked(marker: str) -> str:
    return f"mail {EMAIL} the receipt for card {CARD}, ref {marker}"


def no_value_stored(running: Running, request_id: str, marker: str) -> dict[str, Any]:
    row = stored(running, request_id)
    everything = json.dumps(row, default=str)
    assert marker in everything  # the bodies were kept, redacted
    for value in (EMAIL, CARD, CARD.replace(" ", ""), "jane.doe"):
        assert value not in everything
    return row


def output_pii(row: dict[str, Any]) -> dict[str, Any]:
    checks = (row["attributes"] or {})["guardrails"]["checks"]
    found: dict[str, Any] = next(c for c in checks if c["check"] == "output.pii")
    return found


def test_openai_tool_call_arguments_are_redacted_whole_and_streamed(
    redacting: Running, upstream: MockUpstream
) -> None:
    client = openai_client(redacting)
    marker = uuid.uuid4().hex
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-echo-tool",
        messages=[{"role": "user", "content": asked(marker)}],
        tools=[LOOKUP_OPENAI],
    )
    assert EMAIL in str(sent_with(upstream, marker).body)  # the provider saw it
    call = raw.parse().choices[0].message.tool_calls
    assert call is not None and call[0].type == "function"
    assert call[0].function.name == "file_receipt"
    assert json.loads(call[0].function.arguments) == {"text": REDACTED.format(marker=marker)}
    row = no_value_stored(redacting, raw.headers["x-trimtab-request-id"], marker)
    pii = output_pii(row)
    assert pii["outcome"] == "redact"
    assert [f["entity"] for f in pii["findings"]] == ["email", "credit_card"]

    marker = uuid.uuid4().hex
    streamed = client.chat.completions.with_raw_response.create(
        model="gpt-echo-tool",
        messages=[{"role": "user", "content": asked(marker)}],
        tools=[LOOKUP_OPENAI],
        stream=True,
    )
    arguments, finish, names = "", None, []
    for chunk in streamed.parse():
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                if delta.function is not None:
                    arguments += delta.function.arguments or ""
                    names += [delta.function.name] if delta.function.name else []
            finish = choice.finish_reason or finish
    assert names == ["file_receipt"] and finish == "tool_calls"
    assert json.loads(arguments) == {"text": REDACTED.format(marker=marker)}
    assert EMAIL not in arguments and "1111" not in arguments
    no_value_stored(redacting, streamed.headers["x-trimtab-request-id"], marker)


def test_anthropic_tool_use_input_is_redacted_whole_and_streamed(
    redacting: Running, upstream: MockUpstream
) -> None:
    client = anthropic.Anthropic(base_url=redacting.url, api_key=APP_KEY, max_retries=0)
    marker = uuid.uuid4().hex
    raw = client.messages.with_raw_response.create(
        model="claude-echo-tool",
        max_tokens=200,
        messages=[{"role": "user", "content": asked(marker)}],
        tools=[LOOKUP_ANTHROPIC],
    )
    assert EMAIL in str(sent_with(upstream, marker).body)
    message = raw.parse()
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "file_receipt"
    assert block.input == {"text": REDACTED.format(marker=marker)}
    assert message.stop_reason == "tool_use"
    row = no_value_stored(redacting, raw.headers["x-trimtab-request-id"], marker)
    assert output_pii(row)["outcome"] == "redact"

    marker = uuid.uuid4().hex
    with client.messages.stream(
        model="claude-echo-tool",
        max_tokens=200,
        messages=[{"role": "user", "content": asked(marker)}],
        tools=[LOOKUP_ANTHROPIC],
    ) as stream:
        partial = "".join(event.partial_json for event in stream if event.type == "input_json")
        final = stream.get_final_message()
        request_id = stream.response.headers["x-trimtab-request-id"]
    assert json.loads(partial) == {"text": REDACTED.format(marker=marker)}
    streamed_block = final.content[0]
    assert streamed_block.type == "tool_use"
    assert streamed_block.input == {"text": REDACTED.format(marker=marker)}
    no_value_stored(redacting, request_id, marker)
