"""The texts a guardrail scans, and where they are (docs/guardrails.md, "Tool calls"): a
request's message texts, text parts, tool-call arguments (OpenAI), tool inputs and tool
results (Anthropic), an answer's texts and its tool calls', and a request rewritten with
redacted texts. Split from gateway/guarding.py, which runs the checks on them."""

from __future__ import annotations

from typing import Any

from trimtab.types import Wire

JSON = dict[str, Any]
Slot = tuple[str | int, ...]  # the path of a text in a body (below)
# where an answer's text is: the object holding it, its key, and where it is when it is a
# tool call's (None for the answer's own text)
Place = tuple[Any, Any, str | None]


# # A slot is the path of one text from the body's root: ("messages", 2, "content"),
# ("system", 0, "text"), ("messages", 1, "tool_calls", 0, "function", "arguments"). Tool-call
# arguments and tool inputs and results are found in the same pass as the message texts:
# a body without tool calls costs what it did.


def _parts(content: Any, path: Slot, texts: list[str], slots: list[Slot]) -> None:
    if isinstance(content, str):
        texts.append(content)
        slots.append(path)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
                    slots.append((*path, j, "text"))
            elif kind == "tool_use":  # Anthropic: the call's input, a JSON object
                _leaves(part.get("input"), (*path, j, "input"), texts, slots)
            elif kind == "tool_result":  # its content: a string or text blocks
                _parts(part.get("content"), (*path, j, "content"), texts, slots)


def _leaves(value: Any, path: Slot, texts: list[str], slots: list[Slot]) -> None:
    """Every string in a JSON value, with its path."""
    if isinstance(value, str):
        texts.append(value)
        slots.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _leaves(item, (*path, key), texts, slots)
    elif isinstance(value, list):
        for k, item in enumerate(value):
            _leaves(item, (*path, k), texts, slots)


def _tool_calls(calls: Any, path: Slot, texts: list[str], slots: list[Slot]) -> None:
    """OpenAI: each tool call's `function.arguments` (a JSON text, scanned as text)."""
    if not isinstance(calls, list):
        return
    for k, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            texts.append(function["arguments"])
            slots.append((*path, k, "function", "arguments"))


def request_texts(body: JSON, wire: Wire) -> tuple[list[str], list[Slot]]:
    """Every text of the prompt in order: the system prompt, message contents and text
    parts, tool-call arguments (OpenAI), tool inputs and tool results (Anthropic)."""
    texts: list[str] = []
    slots: list[Slot] = []
    if wire == "anthropic" and "system" in body:
        _parts(body["system"], ("system",), texts, slots)
    messages = body.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if isinstance(message, dict):
                _parts(message.get("content"), ("messages", i, "content"), texts, slots)
                if "tool_calls" in message:
                    _tool_calls(message["tool_calls"], ("messages", i, "tool_calls"), texts, slots)
    return texts, slots


def label(slot: Slot) -> int | str:
    """Where a finding is: a message's index for its text, "system", or the path."""
    if slot[0] == "system":
        return "system"
    if len(slot) == 3 or (len(slot) == 5 and slot[4] == "text" and slot[2] == "content"):
        return int(slot[1])
    return path_label(slot)


def path_label(slot: Slot) -> str:
    """("messages", 1, "tool_calls", 0, "function", "arguments") ->
    "messages[1].tool_calls[0].function.arguments"."""
    out = ""
    for step in slot:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def rewrite_request(
    body: JSON, wire: Wire, slots: list[Slot], before: list[str], after: list[str]
) -> JSON:
    """A copy of the body with the changed texts replaced (the client's objects untouched:
    each container on the way to a changed text is copied once)."""
    out = dict(body)
    copies: dict[Slot, Any] = {(): out}
    for slot, old, new in zip(slots, before, after, strict=True):
        if old == new:
            continue
        node: Any = out
        for depth in range(1, len(slot)):
            copy = copies.get(slot[:depth])
            if copy is None:
                child = node[slot[depth - 1]]
                copy = dict(child) if isinstance(child, dict) else list(child)
                node[slot[depth - 1]] = copy
                copies[slot[:depth]] = copy
            node = copy
        node[slot[-1]] = new
    return out


def response_texts(parsed: JSON, wire: Wire) -> list[Place]:
    """Where the answer's texts are, and its tool calls' arguments (OpenAI) or inputs'
    strings (Anthropic)."""
    found: list[Place] = []
    if wire == "openai":
        for c, choice in enumerate(parsed.get("choices") or ()):
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            if isinstance(message.get("content"), str):
                found.append((message, "content", None))
            if message.get("tool_calls"):
                texts: list[str] = []
                slots: list[Slot] = []
                path = ("choices", c, "message", "tool_calls")
                _tool_calls(message["tool_calls"], path, texts, slots)
                found.extend(_place(parsed, slot) for slot in slots)
    else:
        for b, block in enumerate(parsed.get("content") or ()):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                found.append((block, "text", None))
            elif kind == "tool_use":
                texts, slots = [], []
                _leaves(block.get("input"), ("content", b, "input"), texts, slots)
                found.extend(_place(parsed, slot) for slot in slots)
    return found


def _place(root: Any, slot: Slot) -> Place:
    node = root
    for step in slot[:-1]:
        node = node[step]
    return node, slot[-1], path_label(slot)
