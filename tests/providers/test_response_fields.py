"""What trimtab reads out of an upstream's response body: token usage and the error message
(trimtab.providers.response_fields)."""

from __future__ import annotations

from tests.providers.support import ANTHROPIC_RESP
from trimtab.providers.response_fields import (
    anthropic_error_message,
    anthropic_usage,
    openai_error_message,
    openai_usage,
)


class TestUsage:
    def test_usage_helpers(self) -> None:
        assert anthropic_usage(ANTHROPIC_RESP) == (113, 5)
        assert anthropic_usage({"usage": {"input_tokens": 4, "output_tokens": 2}}) == (4, 2)
        assert anthropic_usage({}) == (None, None)
        assert anthropic_usage({"usage": {}}) == (None, None)
        assert openai_usage({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4)
        assert openai_usage({"usage": None}) == (None, None)
        assert openai_usage({"usage": {"prompt_tokens": True}}) == (None, None)


class TestErrorMessages:
    def test_openai(self) -> None:
        body = b'{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}'
        assert openai_error_message(body) == "Incorrect API key"
        assert openai_error_message(b'{"error": "model not found"}') == "model not found"
        assert openai_error_message(b'{"error": {"code": 1}}') is None
        assert openai_error_message(b'{"detail": "x"}') is None
        assert openai_error_message(b"<html>502</html>") is None
        assert openai_error_message(b"") is None
        assert openai_error_message(b"[1]") is None

    def test_anthropic(self) -> None:
        body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        assert anthropic_error_message(body) == "Overloaded"
        assert anthropic_error_message(b'{"error":{"message":"no type field"}}') == "no type field"
        assert anthropic_error_message(b'{"type":"message","error":{"message":"x"}}') is None
        assert anthropic_error_message(b'{"type":"error","error":"flat"}') is None
        assert anthropic_error_message(b"not json") is None
        assert anthropic_error_message(b'"str"') is None
