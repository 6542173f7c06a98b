"""An Anthropic Messages request to an OpenAI Chat Completions upstream, and its answer back.

Pure: plain decoded JSON dicts in and out, no I/O; inputs are never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from trimtab.providers.translate import (
    JSON,
    TranslationError,
    as_dict,
    as_int,
    as_list,
    empty_schema,
    message_text,
    openai_tool_call,
    optional_text,
    require_str,
    stop_reason_from_finish_reason,
    unsupported,
)


def anthropic_to_openai_request(body: JSON, upstream_model: str) -> JSON:
    """Translate an Anthropic Messages request into an OpenAI chat completions request."""
    if body.get("top_k") is not None:
        raise unsupported("top_k", "openai")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") != "disabled":
        raise unsupported(f"thinking.type {thinking.get('type')!r}", "openai")
    messages: list[JSON] = []
    system = _anthropic_system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise TranslationError("messages must be a non-empty list")
    for i, raw in enumerate(raw_messages):
        messages.extend(_anthropic_message_to_openai(as_dict(raw, f"messages[{i}]"), i))
    out: JSON = {"model": upstream_model, "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(as_list(body["stop_sequences"], "stop_sequences"))
    if body.get("stream") is not None:
        out["stream"] = bool(body["stream"])
        if out["stream"]:
            out["stream_options"] = {"include_usage": True}
    tools = body.get("tools")
    if tools:
        out["tools"] = _anthropic_tools_to_openai(as_list(tools, "tools"))
    choice = body.get("tool_choice")
    if choice is not None:
        _anthropic_tool_choice_to_openai(as_dict(choice, "tool_choice"), out, bool(tools))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    return out


def _anthropic_system_text(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    texts: list[str] = []
    for i, raw in enumerate(as_list(system, "system")):
        block = as_dict(raw, f"system[{i}]")
        if block.get("type") != "text":
            raise unsupported(f"system[{i}].type {block.get('type')!r}", "openai")
        texts.append(optional_text(block.get("text"), f"system[{i}].text"))
    return "\n\n".join(t for t in texts if t)


def _anthropic_message_to_openai(msg: JSON, i: int) -> list[JSON]:
    path = f"messages[{i}]"
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise unsupported(f"{path}.role {role!r}", "openai")
    content = msg.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = as_list(content, f"{path}.content")
    if role == "assistant":
        return [_anthropic_assistant_to_openai(blocks, path)]
    out: list[JSON] = []  # tool messages must directly follow the assistant turn, so they go first
    parts: list[JSON] = []
    for j, raw in enumerate(blocks):
        bpath = f"{path}.content[{j}]"
        block = as_dict(raw, bpath)
        btype = block.get("type")
        if btype == "text":
            parts.append(
                {"type": "text", "text": optional_text(block.get("text"), f"{bpath}.text")}
            )
        elif btype == "image":
            parts.append(_anthropic_image_part(block.get("source"), bpath))
        elif btype == "tool_result":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": require_str(block.get("tool_use_id"), f"{bpath}.tool_use_id"),
                    "content": _anthropic_tool_result_content(block.get("content"), bpath),
                }
            )
        else:
            raise unsupported(f"{bpath}.type {btype!r}", "openai")
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
        block = as_dict(raw, bpath)
        btype = block.get("type")
        if btype == "text":
            texts.append(optional_text(block.get("text"), f"{bpath}.text"))
        elif btype == "tool_use":
            tool_calls.append(
                openai_tool_call(
                    require_str(block.get("id"), f"{bpath}.id"),
                    require_str(block.get("name"), f"{bpath}.name"),
                    block.get("input"),
                )
            )
        elif btype in ("thinking", "redacted_thinking"):
            continue  # chat completions cannot carry prior reasoning; it is advisory context only
        else:
            raise unsupported(f"{bpath}.type {btype!r}", "openai")
    message: JSON = {
        "role": "assistant",
        "content": message_text(texts, bool(tool_calls)),
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _anthropic_image_part(source: Any, path: str) -> JSON:
    src = as_dict(source, f"{path}.source")
    stype = src.get("type")
    if stype == "base64":
        url = f"data:{src.get('media_type')};base64,{src.get('data')}"
    elif stype == "url":
        url = require_str(src.get("url"), f"{path}.source.url")
    else:
        raise unsupported(f"{path}.source.type {stype!r}", "openai")
    return {"type": "image_url", "image_url": {"url": url}}


def _anthropic_tool_result_content(content: Any, path: str) -> str | list[JSON]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[JSON] = []
    for k, raw in enumerate(as_list(content, f"{path}.content")):
        block = as_dict(raw, f"{path}.content[{k}]")
        if block.get("type") != "text":
            raise unsupported(
                f"{path}.content[{k}].type {block.get('type')!r} in a tool result", "openai"
            )
        parts.append(
            {"type": "text", "text": optional_text(block.get("text"), f"{path}.content[{k}].text")}
        )
    if len(parts) == 1:
        return str(parts[0]["text"])
    return parts


def _anthropic_tools_to_openai(tools: list[Any]) -> list[JSON]:
    out: list[JSON] = []
    for i, raw in enumerate(tools):
        path = f"tools[{i}]"
        tool = as_dict(raw, path)
        ttype = tool.get("type")
        if ttype not in (None, "custom"):  # server tools (web_search, bash, ...) run at anthropic
            raise unsupported(f"{path}.type {ttype!r}", "openai")
        fn: JSON = {"name": require_str(tool.get("name"), f"{path}.name")}
        if tool.get("description"):
            fn["description"] = tool["description"]
        fn["parameters"] = tool.get("input_schema") or empty_schema()
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
        name = require_str(choice.get("name"), "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise unsupported(f"tool_choice.type {ctype!r}", "openai")
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
            "input_tokens": as_int(usage.get("prompt_tokens")) or 0,
            "output_tokens": as_int(usage.get("completion_tokens")) or 0,
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
