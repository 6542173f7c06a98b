"""Pure translation between the OpenAI Chat Completions and Anthropic Messages wire formats.

Everything here works on plain decoded JSON dicts and does no I/O. Inputs are never mutated;
outputs may share leaf values (schemas, cache_control dicts) with the input instead of copying.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

JSON = dict[str, Any]

DEFAULT_MAX_TOKENS = 4096

_STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ANTHROPIC_INPUT_KEYS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class TranslationError(ValueError):
    """Input that cannot be expressed in the target wire format without changing its meaning."""


# --------------------------------------------------------------------------- shared helpers


def finish_reason_from_stop_reason(stop_reason: str | None) -> str:
    """Map an Anthropic stop_reason to an OpenAI finish_reason ("stop" when unknown)."""
    return _STOP_TO_FINISH.get(stop_reason or "", "stop")


def stop_reason_from_finish_reason(finish_reason: str | None) -> str:
    """Map an OpenAI finish_reason to an Anthropic stop_reason ("end_turn" when unknown)."""
    return _FINISH_TO_STOP.get(finish_reason or "", "end_turn")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def anthropic_input_tokens(usage: JSON) -> int | None:
    """Total Anthropic input tokens: uncached input plus cache reads and cache writes."""
    total: int | None = None
    for key in _ANTHROPIC_INPUT_KEYS:
        value = _int(usage.get(key))
        if value is not None:
            total = value if total is None else total + value
    return total


def openai_usage_from_anthropic(usage: JSON) -> JSON:
    """Build an OpenAI usage object from an Anthropic usage object."""
    prompt = anthropic_input_tokens(usage) or 0
    completion = _int(usage.get("output_tokens")) or 0
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = _int(usage.get("cache_read_input_tokens"))
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def _unsupported(what: str, target: str) -> TranslationError:
    return TranslationError(f"{what} is not supported by {target} models")


def _require_str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise TranslationError(f"{path} must be a non-empty string")
    return value


def _as_dict(value: Any, path: str) -> JSON:
    if not isinstance(value, dict):
        raise TranslationError(f"{path} must be an object")
    return value


def _as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"{path} must be a list")
    return value


def _text(value: Any, path: str) -> str:
    """A text field that may be absent: "" for None, else it must be a string."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TranslationError(f"{path} must be a string")
    return value


def _dump(value: Any) -> str:
    if isinstance(value, str):  # already serialized (e.g. unparseable streamed tool input)
        return value
    return orjson.dumps({} if value is None else value).decode()


def _message_text(texts: list[str], has_tool_calls: bool) -> str | None:
    # OpenAI's convention: content is null on a tool-calling turn that has no text.
    text = "".join(texts)
    return None if has_tool_calls and not text else text


def _empty_schema() -> JSON:
    return {"type": "object", "properties": {}}


def _openai_tool_call(call_id: Any, name: Any, arguments: Any) -> JSON:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": _dump(arguments)},
    }


# --------------------------------------------------------------------------- OpenAI -> Anthropic


def openai_chat_to_anthropic(body: JSON, upstream_model: str) -> JSON:
    """Translate an OpenAI chat completions request into an Anthropic Messages request."""
    _reject_openai_only_semantics(body)
    system, messages = _openai_messages_to_anthropic(body.get("messages"))
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    out: JSON = {
        "model": upstream_model,
        "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        "messages": messages,
    }
    if system:
        out["system"] = system
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif stop:
        out["stop_sequences"] = list(_as_list(stop, "stop"))
    if body.get("stream") is not None:
        out["stream"] = bool(body["stream"])
    tools = body.get("tools")
    if tools:
        out["tools"] = _openai_tools_to_anthropic(_as_list(tools, "tools"))
    tool_choice = _openai_tool_choice_to_anthropic(
        body.get("tool_choice"), body.get("parallel_tool_calls") if tools else None
    )
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    return out


def _reject_openai_only_semantics(body: JSON) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise _unsupported(f"n={n!r} (more than one choice)", "anthropic")
    for key in ("logprobs", "top_logprobs", "logit_bias", "frequency_penalty", "presence_penalty"):
        if body.get(key):
            raise _unsupported(f"{key}={body[key]!r}", "anthropic")
    for key in ("audio", "functions", "function_call", "reasoning_effort", "web_search_options"):
        if body.get(key) is not None:
            raise _unsupported(key, "anthropic")
    response_format = body.get("response_format")
    if response_format is not None:
        rtype = response_format.get("type") if isinstance(response_format, dict) else None
        if rtype != "text":
            raise _unsupported(f"response_format.type {rtype!r}", "anthropic")
    for modality in _as_list(body.get("modalities") or [], "modalities"):
        if modality != "text":
            raise _unsupported(f"modalities {modality!r}", "anthropic")


def _openai_messages_to_anthropic(messages: Any) -> tuple[str, list[JSON]]:
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list")
    system_parts: list[str] = []
    out: list[JSON] = []
    for i, raw in enumerate(messages):
        path = f"messages[{i}]"
        msg = _as_dict(raw, path)
        role = msg.get("role")
        if role in ("system", "developer"):
            text = _openai_text_only(msg.get("content"), f"{path}.content")
            if text:
                system_parts.append(text)
            continue
        if role == "user":
            blocks = _openai_parts_to_blocks(msg.get("content"), path)
        elif role == "assistant":
            blocks = _openai_assistant_blocks(msg, path)
        elif role == "tool":
            role = "user"
            blocks = [_openai_tool_result(msg, path)]
        else:
            raise _unsupported(f"{path}.role {role!r}", "anthropic")
        if not blocks:  # anthropic rejects empty messages; an empty one carries nothing anyway
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    if not out:
        raise TranslationError(
            "messages must contain at least one non-empty user, assistant or tool message"
        )
    for message in out:
        message["content"] = _finish_anthropic_content(message["content"])
    return "\n\n".join(system_parts), out


def _finish_anthropic_content(blocks: list[JSON]) -> str | list[JSON]:
    # Anthropic requires tool_result blocks to lead a user turn; merging may have put text first.
    results = [b for b in blocks if b["type"] == "tool_result"]
    if results and len(results) != len(blocks):
        blocks = results + [b for b in blocks if b["type"] != "tool_result"]
    if len(blocks) == 1 and blocks[0]["type"] == "text" and len(blocks[0]) == 2:
        return str(blocks[0]["text"])
    return blocks


def _openai_text_only(content: Any, path: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, raw in enumerate(_as_list(content, path)):
        part = _as_dict(raw, f"{path}[{j}]")
        if part.get("type") != "text":
            raise _unsupported(f"{path}[{j}].type {part.get('type')!r}", "anthropic")
        texts.append(_text(part.get("text"), f"{path}[{j}].text"))
    return "".join(texts)


def _openai_parts_to_blocks(content: Any, path: str) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError(f"{path}.content must be a string or a list of content parts")
    blocks: list[JSON] = []
    for j, raw in enumerate(content):
        ppath = f"{path}.content[{j}]"
        part = _as_dict(raw, ppath)
        ptype = part.get("type")
        if ptype in ("text", "refusal"):
            text = part.get(ptype)
            if not text:  # anthropic rejects empty text blocks
                continue
            block: JSON = {"type": "text", "text": text}
        elif ptype == "image_url":
            block = {"type": "image", "source": _image_source(part.get("image_url"), ppath)}
        else:
            raise _unsupported(f"{ppath}.type {ptype!r}", "anthropic")
        if part.get("cache_control") is not None:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image_source(image_url: Any, path: str) -> JSON:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    path = f"{path}.image_url.url"
    if not isinstance(url, str):
        raise TranslationError(f"{path} must be a string")
    scheme = url[:8].lower()
    if scheme.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        if not comma or not header.endswith(";base64"):
            raise _unsupported(f"{path} (a data URL that is not base64)", "anthropic")
        media_type = header.partition(";")[0]
        return {"type": "base64", "media_type": media_type, "data": data}
    if scheme.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise TranslationError(f"{path} must be an http(s) URL or a base64 data URL")


def _openai_assistant_blocks(msg: JSON, path: str) -> list[JSON]:
    blocks = _openai_parts_to_blocks(msg.get("content"), path)
    refusal = msg.get("refusal")
    if not blocks and isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    for k, raw in enumerate(_as_list(msg.get("tool_calls") or [], f"{path}.tool_calls")):
        cpath = f"{path}.tool_calls[{k}]"
        call = _as_dict(raw, cpath)
        ctype = call.get("type", "function")
        if ctype != "function":
            raise _unsupported(f"{cpath}.type {ctype!r}", "anthropic")
        fn = _as_dict(call.get("function"), f"{cpath}.function")
        blocks.append(
            {
                "type": "tool_use",
                "id": _require_str(call.get("id"), f"{cpath}.id"),
                "name": _require_str(fn.get("name"), f"{cpath}.function.name"),
                "input": _parse_arguments(fn.get("arguments"), f"{cpath}.function.arguments"),
            }
        )
    return blocks


def _parse_arguments(arguments: Any, path: str) -> JSON:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str):
        raise TranslationError(f"{path} must be a JSON string")
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise TranslationError(f"{path} is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise TranslationError(f"{path} must encode a JSON object")
    return parsed


def _openai_tool_result(msg: JSON, path: str) -> JSON:
    block: JSON = {
        "type": "tool_result",
        "tool_use_id": _require_str(msg.get("tool_call_id"), f"{path}.tool_call_id"),
    }
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = _openai_parts_to_blocks(content, path)
        if parts:
            block["content"] = parts
    return block


def _openai_tools_to_anthropic(tools: list[Any]) -> list[JSON]:
    out: list[JSON] = []
    for i, raw in enumerate(tools):
        path = f"tools[{i}]"
        tool = _as_dict(raw, path)
        ttype = tool.get("type", "function")
        if ttype != "function":
            raise _unsupported(f"{path}.type {ttype!r}", "anthropic")
        fn = _as_dict(tool.get("function"), f"{path}.function")
        spec: JSON = {"name": _require_str(fn.get("name"), f"{path}.function.name")}
        if fn.get("description"):
            spec["description"] = fn["description"]
        spec["input_schema"] = fn.get("parameters") or _empty_schema()
        out.append(spec)
    return out


def _openai_tool_choice_to_anthropic(choice: Any, parallel: Any) -> JSON | None:
    result: JSON | None
    if choice is None:
        result = None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        fn = _as_dict(choice.get("function"), "tool_choice.function")
        result = {"type": "tool", "name": _require_str(fn.get("name"), "tool_choice.function.name")}
    else:
        what = choice.get("type") if isinstance(choice, dict) else choice
        raise _unsupported(f"tool_choice {what!r}", "anthropic")
    if parallel is False:
        result = result or {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result


def anthropic_to_openai_response(resp: JSON, model: str, created: int) -> JSON:
    """Translate an Anthropic Message response into an OpenAI chat.completion object."""
    texts: list[str] = []
    tool_calls: list[JSON] = []
    for block in resp.get("content") or ():
        btype = block.get("type")
        if btype == "text":
            texts.append(block.get("text") or "")
        elif btype == "tool_use":
            tool_calls.append(
                _openai_tool_call(block.get("id"), block.get("name"), block.get("input"))
            )
        # thinking, redacted_thinking and server tool blocks have no chat.completion equivalent
    message: JSON = {
        "role": "assistant",
        "content": _message_text(texts, bool(tool_calls)),
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    out: JSON = {
        "id": f"chatcmpl-{resp.get('id') or ''}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason_from_stop_reason(resp.get("stop_reason")),
            }
        ],
    }
    usage = resp.get("usage")
    if isinstance(usage, dict):
        out["usage"] = openai_usage_from_anthropic(usage)
    return out


# --------------------------------------------------------------------------- Anthropic -> OpenAI


def anthropic_to_openai_request(body: JSON, upstream_model: str) -> JSON:
    """Translate an Anthropic Messages request into an OpenAI chat completions request."""
    if body.get("top_k") is not None:
        raise _unsupported("top_k", "openai")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") != "disabled":
        raise _unsupported(f"thinking.type {thinking.get('type')!r}", "openai")
    messages: list[JSON] = []
    system = _anthropic_system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise TranslationError("messages must be a non-empty list")
    for i, raw in enumerate(raw_messages):
        messages.extend(_anthropic_message_to_openai(_as_dict(raw, f"messages[{i}]"), i))
    out: JSON = {"model": upstream_model, "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(_as_list(body["stop_sequences"], "stop_sequences"))
    if body.get("stream") is not None:
        out["stream"] = bool(body["stream"])
        if out["stream"]:
            out["stream_options"] = {"include_usage": True}
    tools = body.get("tools")
    if tools:
        out["tools"] = _anthropic_tools_to_openai(_as_list(tools, "tools"))
    choice = body.get("tool_choice")
    if choice is not None:
        _anthropic_tool_choice_to_openai(_as_dict(choice, "tool_choice"), out, bool(tools))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    return out


def _anthropic_system_text(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    texts: list[str] = []
    for i, raw in enumerate(_as_list(system, "system")):
        block = _as_dict(raw, f"system[{i}]")
        if block.get("type") != "text":
            raise _unsupported(f"system[{i}].type {block.get('type')!r}", "openai")
        texts.append(_text(block.get("text"), f"system[{i}].text"))
    return "\n\n".join(t for t in texts if t)


def _anthropic_message_to_openai(msg: JSON, i: int) -> list[JSON]:
    path = f"messages[{i}]"
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise _unsupported(f"{path}.role {role!r}", "openai")
    content = msg.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = _as_list(content, f"{path}.content")
    if role == "assistant":
        return [_anthropic_assistant_to_openai(blocks, path)]
    out: list[JSON] = []  # tool messages must directly follow the assistant turn, so they go first
    parts: list[JSON] = []
    for j, raw in enumerate(blocks):
        bpath = f"{path}.content[{j}]"
        block = _as_dict(raw, bpath)
        btype = block.get("type")
        if btype == "text":
            parts.append({"type": "text", "text": _text(block.get("text"), f"{bpath}.text")})
        elif btype == "image":
            parts.append(_anthropic_image_part(block.get("source"), bpath))
        elif btype == "tool_result":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": _require_str(block.get("tool_use_id"), f"{bpath}.tool_use_id"),
                    "content": _anthropic_tool_result_content(block.get("content"), bpath),
                }
            )
        else:
            raise _unsupported(f"{bpath}.type {btype!r}", "openai")
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _anthropic_assistant_to_openai(blocks: list[Any], path: str) -> JSON:
    texts: list[str] = []
    tool_calls: list[JSON] = []
    for j, raw in enumerate(blocks):
        bpath = f"{path}.content[{j}]"
        block = _as_dict(raw, bpath)
        btype = block.get("type")
        if btype == "text":
            texts.append(_text(block.get("text"), f"{bpath}.text"))
        elif btype == "tool_use":
            tool_calls.append(
                _openai_tool_call(
                    _require_str(block.get("id"), f"{bpath}.id"),
                    _require_str(block.get("name"), f"{bpath}.name"),
                    block.get("input"),
                )
            )
        elif btype in ("thinking", "redacted_thinking"):
            continue  # chat completions cannot carry prior reasoning; it is advisory context only
        else:
            raise _unsupported(f"{bpath}.type {btype!r}", "openai")
    message: JSON = {
        "role": "assistant",
        "content": _message_text(texts, bool(tool_calls)),
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _anthropic_image_part(source: Any, path: str) -> JSON:
    src = _as_dict(source, f"{path}.source")
    stype = src.get("type")
    if stype == "base64":
        url = f"data:{src.get('media_type')};base64,{src.get('data')}"
    elif stype == "url":
        url = _require_str(src.get("url"), f"{path}.source.url")
    else:
        raise _unsupported(f"{path}.source.type {stype!r}", "openai")
    return {"type": "image_url", "image_url": {"url": url}}


def _anthropic_tool_result_content(content: Any, path: str) -> str | list[JSON]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[JSON] = []
    for k, raw in enumerate(_as_list(content, f"{path}.content")):
        block = _as_dict(raw, f"{path}.content[{k}]")
        if block.get("type") != "text":
            raise _unsupported(
                f"{path}.content[{k}].type {block.get('type')!r} in a tool result", "openai"
            )
        parts.append(
            {"type": "text", "text": _text(block.get("text"), f"{path}.content[{k}].text")}
        )
    if len(parts) == 1:
        return str(parts[0]["text"])
    return parts


def _anthropic_tools_to_openai(tools: list[Any]) -> list[JSON]:
    out: list[JSON] = []
    for i, raw in enumerate(tools):
        path = f"tools[{i}]"
        tool = _as_dict(raw, path)
        ttype = tool.get("type")
        if ttype not in (None, "custom"):  # server tools (web_search, bash, ...) run at anthropic
            raise _unsupported(f"{path}.type {ttype!r}", "openai")
        fn: JSON = {"name": _require_str(tool.get("name"), f"{path}.name")}
        if tool.get("description"):
            fn["description"] = tool["description"]
        fn["parameters"] = tool.get("input_schema") or _empty_schema()
        out.append({"type": "function", "function": fn})
    return out


def _anthropic_tool_choice_to_openai(choice: JSON, out: JSON, has_tools: bool) -> None:
    ctype = choice.get("type")
    if ctype == "auto":
        out["tool_choice"] = "auto"
    elif ctype == "any":
        out["tool_choice"] = "required"
    elif ctype == "none":
        out["tool_choice"] = "none"
    elif ctype == "tool":
        name = _require_str(choice.get("name"), "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise _unsupported(f"tool_choice.type {ctype!r}", "openai")
    if choice.get("disable_parallel_tool_use") and has_tools:
        out["parallel_tool_calls"] = False


def openai_to_anthropic_response(resp: JSON, model: str) -> JSON:
    """Translate an OpenAI chat.completion object into an Anthropic Message response."""
    choices = resp.get("choices") or ()
    choice: JSON = choices[0] if choices else {}
    message: JSON = choice.get("message") or {}
    content: list[JSON] = [
        {"type": "text", "text": text} for text in _openai_texts(message.get("content")) if text
    ]
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": _arguments_or_raw(fn.get("arguments")),
            }
        )
    stop_reason = stop_reason_from_finish_reason(choice.get("finish_reason"))
    if refusal and stop_reason == "end_turn":
        stop_reason = "refusal"
    usage = resp.get("usage") or {}
    return {
        "id": f"msg_{resp.get('id') or ''}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": _int(usage.get("prompt_tokens")) or 0,
            "output_tokens": _int(usage.get("completion_tokens")) or 0,
        },
    }


def _openai_texts(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        return (content,)
    if isinstance(content, list):
        return (p.get("text") or "" for p in content if isinstance(p, dict) and "text" in p)
    return ()


def _arguments_or_raw(arguments: Any) -> Any:
    # A truncated (finish_reason "length") call can carry broken JSON; keep it rather than fail.
    if arguments is None or arguments == "":
        return {}
    if not isinstance(arguments, str):
        return arguments
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    return parsed if isinstance(parsed, dict) else arguments


# --------------------------------------------------------------------------- errors and usage


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def openai_error_message(body: bytes) -> str | None:
    """Human-readable message of an OpenAI-format error body, or None if it is not one."""
    data = _loads(body)
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        return message if isinstance(message, str) else None
    # Several OpenAI-compatible servers send {"error": "<message>"}.
    return error if isinstance(error, str) else None


def anthropic_error_message(body: bytes) -> str | None:
    """Human-readable message of an Anthropic-format error body, or None if it is not one."""
    data = _loads(body)
    if not isinstance(data, dict) or data.get("type", "error") != "error":
        return None
    error = data.get("error")
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    return message if isinstance(message, str) else None


def openai_usage(resp: JSON) -> tuple[int | None, int | None]:
    """(input_tokens, output_tokens) of an OpenAI chat.completion object."""
    usage = resp.get("usage")
    if not isinstance(usage, dict):
        return None, None
    return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))


def anthropic_usage(resp: JSON) -> tuple[int | None, int | None]:
    """(input_tokens incl. cache reads/writes, output_tokens) of an Anthropic Message."""
    usage = resp.get("usage")
    if not isinstance(usage, dict):
        return None, None
    return anthropic_input_tokens(usage), _int(usage.get("output_tokens"))
