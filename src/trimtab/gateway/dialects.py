"""The two wire formats a client may speak, and the bridge to the one a provider speaks."""

from __future__ import annotations

import time
from typing import Any

import orjson

from trimtab.bounds import exceeds_depth, too_deep_message
from trimtab.errors import GatewayError
from trimtab.providers.anthropic_to_openai import (
    anthropic_to_openai_request,
    openai_to_anthropic_response,
)
from trimtab.providers.base import UpstreamError
from trimtab.providers.openai_to_anthropic import (
    anthropic_to_openai_response,
    openai_chat_to_anthropic,
)
from trimtab.providers.response_fields import anthropic_usage, openai_usage
from trimtab.providers.translate import TranslationError
from trimtab.types import Wire

JSON = dict[str, Any]


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, "invalid_request", message, param=param)


def parse_request(raw: bytes) -> JSON:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    if not raw:
        raise bad_request("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, not {type(body).__name__}")
    if exceeds_depth(body):
        raise bad_request(too_deep_message("the request body"))
    return body


def require_model(body: JSON) -> str:
    model = body.get("model")
    if model is None:
        raise bad_request("missing required field 'model'", "model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string", "model")
    return model


def check_messages(body: JSON) -> None:
    messages = body.get("messages")
    if messages is None:
        raise bad_request("missing required field 'messages'", "messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(f"messages[{i}] must be an object with a 'role'", f"messages[{i}]")


_TOKEN_CAPS = ("max_tokens", "max_completion_tokens")


def _check_token_caps(body: JSON) -> None:
    for name in _TOKEN_CAPS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise bad_request(f"'{name}' must be a positive integer, not {value!r:.40}", name)


def check_openai(body: JSON) -> None:
    check_messages(body)
    _check_token_caps(body)


def check_anthropic(body: JSON) -> None:
    check_messages(body)
    if body.get("max_tokens") is None:
        raise bad_request("missing required field 'max_tokens'", "max_tokens")
    _check_token_caps(body)


def check_embeddings(body: JSON) -> None:
    value = body.get("input")
    if value is None:
        raise bad_request("missing required field 'input'", "input")
    ok = isinstance(value, str) or (isinstance(value, list) and value)
    if not ok:
        raise bad_request("'input' must be a string or a non-empty array", "input")


def check_stream_flag(body: JSON) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", "stream")
    return stream


def client_wants_usage(body: JSON) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def upstream_request(client: Wire, provider: Wire, body: JSON, model: str, stream: bool) -> JSON:
    """The body to send upstream; always asks a streaming upstream for usage."""
    try:
        if client == "openai" and provider == "openai":
            out = dict(body)
            out["model"] = model
            if stream:
                options = out.get("stream_options")
                out["stream_options"] = {
                    **(options if isinstance(options, dict) else {}),
                    "include_usage": True,
                }
            return out
        if client == "anthropic" and provider == "anthropic":
            out = dict(body)
            out["model"] = model
            meta = out.get("metadata")
            if isinstance(meta, dict):
                # Anthropic accepts only user_id; session/feature tags are trimtab's
                kept = {k: v for k, v in meta.items() if k == "user_id"}
                if kept:
                    out["metadata"] = kept
                else:
                    out.pop("metadata")
            return out
        if client == "openai":
            return openai_chat_to_anthropic(body, model)
        out = anthropic_to_openai_request(body, model)
        if stream:
            out["stream_options"] = {"include_usage": True}
        return out
    except TranslationError as exc:
        raise bad_request(str(exc)) from None


def parse_upstream(raw: bytes, provider_name: str) -> JSON:
    """The provider's 2xx body as an object, or an UpstreamError naming what was wrong."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            "invalid_response", f"provider '{provider_name}' returned invalid JSON: {exc}"
        ) from None
    if not isinstance(value, dict):
        raise UpstreamError(
            "invalid_response", f"provider '{provider_name}' returned JSON that is not an object"
        )
    return value


def client_response(client: Wire, provider: Wire, parsed: JSON, raw: bytes, model: str) -> bytes:
    """The response in the client's wire format; the provider's own bytes when they match."""
    if client == provider:
        return raw
    name = str(parsed.get("model") or model)
    if client == "openai":
        return orjson.dumps(anthropic_to_openai_response(parsed, name, int(time.time())))
    return orjson.dumps(openai_to_anthropic_response(parsed, name))


def usage_of(provider: Wire, parsed: JSON) -> tuple[int | None, int | None]:
    return openai_usage(parsed) if provider == "openai" else anthropic_usage(parsed)


def finish_reasons_of(provider: Wire, parsed: JSON) -> list[str] | None:
    if provider == "anthropic":
        reason = parsed.get("stop_reason")
        return [reason] if isinstance(reason, str) else None
    choices = parsed.get("choices")
    if not isinstance(choices, list):
        return None
    reasons = [c.get("finish_reason") for c in choices if isinstance(c, dict)]
    return [r for r in reasons if isinstance(r, str)] or None
