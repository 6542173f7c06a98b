"""What changed between two bundles (pure): the model, each parameter, each message's text."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from trimtab.registry.bundle import Bundle, Message

Change = Literal["added", "removed", "changed"]


def _shown(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class ParamChange:
    name: str
    change: Change
    before: Any = None
    after: Any = None

    def line(self) -> str:
        if self.change == "added":
            return f"  + {self.name}: {_shown(self.after)}"
        if self.change == "removed":
            return f"  - {self.name}: {_shown(self.before)}"
        return f"  ~ {self.name}: {_shown(self.before)} -> {_shown(self.after)}"

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "change": self.change, "from": self.before, "to": self.after}


@dataclass(frozen=True, slots=True)
class MessageChange:
    index: int
    change: Change
    role_before: str | None
    role_after: str | None
    diff: str  # unified diff of the message's text

    def view(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "change": self.change,
            "role_from": self.role_before,
            "role_to": self.role_after,
            "diff": self.diff,
        }


@dataclass(frozen=True, slots=True)
class BundleDiff:
    before: str  # labels, like "v1"
    after: str
    model: tuple[str, str] | None
    params: tuple[ParamChange, ...]
    messages: tuple[MessageChange, ...]
    guardrails: tuple[ParamChange, ...] = ()  # by section: mode, input, output, session

    @property
    def identical(self) -> bool:
        return self.model is None and not self.params and not self.messages and not self.guardrails

    def unified(self) -> str:
        """The whole difference as text: model, parameters, then each message's diff."""
        if self.identical:
            return f"{self.before} and {self.after} are identical\n"
        lines: list[str] = []
        if self.model is not None:
            lines.append(f"model: {self.model[0]} -> {self.model[1]}")
        if self.params:
            lines.append("params:")
            lines.extend(p.line() for p in self.params)
        if self.guardrails:
            lines.append("guardrails:")
            lines.extend(p.line() for p in self.guardrails)
        out = "\n".join(lines) + "\n" if lines else ""
        return out + "".join(m.diff for m in self.messages)

    def view(self) -> dict[str, Any]:
        return {
            "from": self.before,
            "to": self.after,
            "identical": self.identical,
            "model": None if self.model is None else {"from": self.model[0], "to": self.model[1]},
            "params": [p.view() for p in self.params],
            "messages": [m.view() for m in self.messages],
            "unified": self.unified(),
        }


def _param_changes(a: dict[str, Any], b: dict[str, Any]) -> tuple[ParamChange, ...]:
    out: list[ParamChange] = []
    for name in sorted(set(a) | set(b)):
        if name not in a:
            out.append(ParamChange(name, "added", after=b[name]))
        elif name not in b:
            out.append(ParamChange(name, "removed", before=a[name]))
        elif _shown(a[name]) != _shown(b[name]):
            out.append(ParamChange(name, "changed", a[name], b[name]))
    return tuple(out)


def _lines(text: str) -> list[str]:
    return [line + "\n" for line in text.split("\n")]


def _message_change(
    i: int, a: Message | None, b: Message | None, before: str, after: str
) -> MessageChange | None:
    if a == b:
        return None
    change: Change = "added" if a is None else "removed" if b is None else "changed"
    old = f"{before} messages[{i}] ({a.role})" if a else "/dev/null"
    new = f"{after} messages[{i}] ({b.role})" if b else "/dev/null"
    text = "".join(
        difflib.unified_diff(
            _lines(a.content) if a else [], _lines(b.content) if b else [], old, new
        )
    )
    if not text:  # the same text under another role
        text = f"--- {old}\n+++ {new}\n(same text; role {a and a.role} -> {b and b.role})\n"
    return MessageChange(i, change, a.role if a else None, b.role if b else None, text)


def diff_bundles(a: Bundle, b: Bundle, before: str = "a", after: str = "b") -> BundleDiff:
    """What turns `a` into `b`; messages are compared position by position."""
    model = None if a.model == b.model else (a.model, b.model)
    messages: list[MessageChange] = []
    for i in range(max(len(a.messages), len(b.messages))):
        ma = a.messages[i] if i < len(a.messages) else None
        mb = b.messages[i] if i < len(b.messages) else None
        change = _message_change(i, ma, mb, before, after)
        if change is not None:
            messages.append(change)
    return BundleDiff(
        before,
        after,
        model,
        _param_changes(dict(a.params), dict(b.params)),
        tuple(messages),
        _param_changes(dict(a.guardrails or {}), dict(b.guardrails or {})),
    )
