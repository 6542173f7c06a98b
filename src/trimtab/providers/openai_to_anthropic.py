"""An OpenAI Chat Completions request to an Anthropic Messages upstream, and its answer back.

Pure: plain decoded JSON dicts in and out, no I/O; inputs are never mutated.
"""

from __future__ import annotations

from typing import Any

import orjson

from trimtab.providers.translate import (
    JSON,
    TranslationError,
    as_dict,
    as_list,
    empty_schema,
    finish_reason_from_stop_reason,
    message_text,
    openai_tool_call,
    openai_usage_from_anthropic,
    optional_text,
    require_str,
    unsupported,
)

DEFAULT_MAX_TOKENS = 4096


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
        out["stop_sequences"] = list(as_list(stop, "stop"))
    if body.get("stream") is not None:
        out["stream"] = bool(body["stream"])
    tools = body.get("tools")
    if tools:
        out["tools"] = _openai_tools_to_anthropic(as_list(tools, "tools"))
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
        raise unsupported(f"n={n!r} (more than one choice)", "anthropic")
    for key in ("logprobs", "top_logprobs", "logit_bias", "frequency_penalty", "presence_penalty"):
        if body.get(key):
            raise unsupported(f"{key}={body[key]!r}", "anthropic")
    for key in ("audio", "functions", "function_call", "reasoning_effort", "web_search_options"):
        if body.get(key) is not None:
            raise unsupported(key, "anthropic")
    response_format = body.get("response_format")
    if response_format is not None:
        rtype = response_format.get("type") if isinstance(response_format, dict) else None
        if rtype != "text":
            raise unsupported(f"response_format.type {rtype!r}", "anthropic")
    for modality in as_list(body.get("modalities") or [], "modalities"):
        if modality != "text":
            raise unsupported(f"modalities {modality!r}", "anthropic")


def _openai_messages_to_anthropic(messages: Any) -> tuple[str, list[JSON]]:
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list")
    system_parts: list[str] = []
    out: list[JSON] = []
    for i, raw in enumerate(messages):
        path = f"messages[{i}]"
        msg = as_dict(raw, path)
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
            raise unsupported(f"{path}.role {role!r}", "anthropic")
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
    for j, raw in enumerate(as_list(content, path)):
        part = as_dict(raw, f"{path}[{j}]")
        if part.get("type") != "text":
            raise unsupported(f"{path}[{j}].type {part.get('type')!r}", "anthropic")
        texts.append(optional_text(part.get("text"), f"{path}[{j}].text"))
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
        part = as_dict(raw, ppath)
        ptype = part.get("type")
        if ptype in ("text", "refusal"):
            text = part.get(ptype)
            if not text:  # anthropic rejects empty text blocks
                continue
            block: JSON = {"type": "text", "text": text}
        elif ptype == "image_url":
            block = {"type": "image", "source": _image_source(part.get("image_url"), ppath)}
        else:
            raise unsupported(f"{ppath}.type {ptype!r}", "anthropic")
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
            raise unsupported(f"{path} (a data URL that is not base64)", "anthropic")
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
    for k, raw in enumerate(as_list(msg.get("tool_calls") or [], f"{path}.tool_calls")):
        cpath = f"{path}.tool_calls[{k}]"
        call = as_dict(raw, cpath)
        ctype = call.get("type", "function")
        if ctype != "function":
            raise unsupported(f"{cpath}.type {ctype!r}", "anthropic")
        fn = as_dict(call.get("function"), f"{cpath}.function")
        blocks.append(
            {
                "type": "tool_use",
                "id": require_str(call.get("id"), f"{cpath}.id"),
                "name": require_str(fn.get("name"), f"{cpath}.function.name"),
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
        "tool_use_id": require_str(msg.get("tool_call_id"), f"{path}.tool_call_id"),
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
        tool = as_dict(raw, path)
        ttype = tool.get("type", "function")
        if ttype != "function":
            raise unsupported(f"{path}.type {ttype!r}", "anthropic")
        fn = as_dict(tool.get("function"), f"{path}.function")
        spec: JSON = {"name": require_str(fn.get("name"), f"{path}.function.name")}
        if fn.get("description"):
            spec["description"] = fn["description"]
        spec["input_schema"] = fn.get("parameters") or empty_schema()
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
        fn = as_dict(choice.get("function"), "tool_choice.function")
        result = {"type": "tool", "name": require_str(fn.get("name"), "tool_choice.function.name")}
    else:
        what = choice.get("type") if isinstance(choice, dict) else choice
        raise unsupported(f"tool_choice {what!r}", "anthropic")
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
                openai_tool_call(block.get("id"), block.get("name"), block.get("input"))
            )
        # thinking, redacted_thinking and server tool blocks have no chat.completion equivalent
    message: JSON = {
        "role": "assistant",
        "content": message_text(texts, bool(tool_calls)),
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
