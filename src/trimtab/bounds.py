"""Bounds on the shape of untrusted input, checked once where it is parsed.

MAX_DEPTH: orjson parses 1,024 levels of nesting but serialises only 255, and the
recursive walks over a request (token estimate, translation) hit Python's recursion
limit near 1,000; real chat, embeddings and routes bodies nest fewer than 15 levels.
64 leaves room for deep JSON-schema tool definitions and is far from either limit.

YAML aliases (`*name`) are refused: an alias repeats a node without repeating its
text, so ten levels of ten-fold aliases turn a few hundred bytes into 10^10 values
when the result is serialised (the "billion laughs").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pydantic import ValidationError

MAX_DEPTH = 64


def too_deep_message(what: str) -> str:
    return f"{what} nests deeper than {MAX_DEPTH} levels"


def exceeds_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` (parsed JSON: dicts, lists, scalars) nests deeper than `limit`
    containers; a scalar is depth 0, `{}` and `[]` depth 1. Iterative, one level at a
    time (about 2 us for a 2 KB chat body), so any depth is safe to check."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 1
    while level:
        if depth > limit:
            return True
        deeper: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        level = deeper
        depth += 1
    return False


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and nesting beyond MAX_DEPTH while composing,
    before any Python object is built (PyYAML composes recursively)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not accepted; write the value out",
                event.start_mark,
            )
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, too_deep_message("the document"), event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_load_yaml(text: str) -> Any:
    """yaml.safe_load without aliases and without nesting deeper than MAX_DEPTH;
    raises yaml.YAMLError (with the line) for either."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the file spells it: `routes.a.version.messages[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_problems(exc: ValidationError, source: str) -> list[str]:
    """One line per error of a parsed file's schema: `source: key.path: message`
    (`unknown key` for a key the schema forbids)."""
    lines = []
    for err in exc.errors():
        where = location(tuple(err["loc"]))
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{source}: {where}: {msg}" if where else f"{source}: {msg}")
    return lines
