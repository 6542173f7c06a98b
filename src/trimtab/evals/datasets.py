"""Dataset items: parsed from JSONL or CSV, checked row by row, content-addressed (pure).

An item is one case of an eval: its input — `variables` for a route's templates, or chat
`messages` — an optional `expected` answer (a string, a number, a list of acceptable
strings, or any JSON), `tags` and `metadata`. Its `id` is stable across versions of the
dataset: given in the file, or derived from the input, so the same case keeps its id when
other items change. A version of a dataset is its list of items; its digest is the SHA-256
of the canonical JSON of that list, so pushing identical content creates no new version.

A file with any bad row stores nothing: `parse` collects every problem, each naming the
source, the line and the field, and raises them together.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from trimtab.bounds import MAX_DEPTH, exceeds_depth

Format = Literal["jsonl", "csv"]

MAX_ITEMS = 100_000
MAX_ITEM_BYTES = 256 * 1024  # one item's canonical JSON
_FIELDS = ("id", "variables", "messages", "expected", "tags", "metadata")
_ROLES = ("system", "user", "assistant")
_MAX_ID = 128


class DatasetError(ValueError):
    """Every problem of a file, one per line of the message."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    variables: Mapping[str, Any] | None = None
    messages: tuple[Mapping[str, Any], ...] | None = None
    expected: Any = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def input(self) -> dict[str, Any]:
        """What the item sends: its variables or its messages."""
        if self.messages is not None:
            return {"messages": [dict(m) for m in self.messages]}
        return {"variables": dict(self.variables or {})}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, **self.input()}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.tags:
            out["tags"] = list(self.tags)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @property
    def digest(self) -> str:
        """The SHA-256 of the item's canonical JSON: equal items, equal digests."""
        return hashlib.sha256(canonical(self.to_json())).hexdigest()


def canonical(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def input_id(item_input: Mapping[str, Any]) -> str:
    """The id of an item that names none: derived from its input alone."""
    return "item_" + hashlib.sha256(canonical(dict(item_input))).hexdigest()[:16]


def dataset_digest(items: Sequence[Item]) -> str:
    """The content address of a dataset version: its items, in order."""
    return hashlib.sha256(canonical([item.to_json() for item in items])).hexdigest()


def parse(text: str, fmt: Format, source: str) -> list[Item]:
    """The items of a JSONL or CSV file; DatasetError with every problem otherwise."""
    if fmt == "jsonl":
        rows = list(_jsonl_rows(text, source))
    elif fmt == "csv":
        rows = list(_csv_rows(text, source))
    else:  # pragma: no cover - Format is a Literal
        raise ValueError(f"unknown dataset format '{fmt}'")
    problems: list[str] = [p for _, _, p in rows if p]
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line, raw, problem in rows:
        if problem or raw is None:
            continue
        where = f"{source} line {line}"
        item, item_problems = _item(raw, where)
        problems.extend(item_problems)
        if item is None:
            continue
        if item.id in first_line:
            problems.append(
                f"{where}: id '{item.id}' is already used on line {first_line[item.id]}"
            )
            continue
        first_line[item.id] = line
        items.append(item)
    if not items and not problems:
        problems.append(f"{source}: no items")
    if len(items) > MAX_ITEMS:
        problems.append(f"{source}: {len(items)} items; at most {MAX_ITEMS} per dataset")
    if problems:
        raise DatasetError(problems)
    return items


def format_of(filename: str) -> Format:
    """The format a file's name says: .jsonl / .ndjson or .csv."""
    lower = filename.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    raise DatasetError([f"{filename}: a dataset file ends in .jsonl, .ndjson or .csv"])


# -- rows -------------------------------------------------------------------------------

Row = tuple[int, dict[str, Any] | None, str | None]  # line, object, problem


def _jsonl_rows(text: str, source: str) -> Iterable[Row]:
    # JSON Lines ends lines with \n (or \r\n) only: str.splitlines would also split at
    # U+2028, U+0085 and others, which JSON strings may hold unescaped
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, None, f"{where}: not valid JSON ({exc})"
            continue
        if not isinstance(value, dict):
            yield number, None, f"{where}: each line must be a JSON object"
        elif exceeds_depth(value):
            yield number, None, f"{where}: nests deeper than {MAX_DEPTH} levels"
        else:
            yield number, value, None


def _csv_rows(text: str, source: str) -> Iterable[Row]:
    """CSV columns: `id`, `expected`, `tags` (separated by `;` or `,`) and `metadata.KEY`
    map to those fields; every other column is a variable. A cell of `expected` that is
    JSON (a list, an object, a number) is read as JSON."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, None, f"{source} line 1: {exc}"
        return
    names = [h.strip() for h in header]
    if "" in names:
        yield 1, None, f"{source} line 1: column {names.index('') + 1} has no name"
        return
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        yield 1, None, f"{source} line 1: column '{duplicates[0]}' appears twice"
        return
    for fixed in ("variables", "messages"):
        if fixed in names:
            yield 1, None, f"{source} line 1: column '{fixed}': use one column per variable"
            return
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, f"{source} line {reader.line_num}: {exc}"
            return
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            yield (
                line,
                None,
                f"{source} line {line}: {len(cells)} cells; the header has {len(names)}",
            )
            continue
        row: dict[str, Any] = {}
        variables: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        for name, cell in zip(names, cells, strict=True):
            if name == "id":
                if cell:
                    row["id"] = cell
            elif name == "expected":
                if cell != "":
                    row["expected"] = _expected_cell(cell)
            elif name == "tags":
                parts = cell.replace(";", ",").split(",")
                row["tags"] = [t.strip() for t in parts if t.strip()]
            elif name.startswith("metadata."):
                metadata[name.removeprefix("metadata.")] = cell
            else:
                variables[name] = cell
        row["variables"] = variables
        if metadata:
            row["metadata"] = metadata
        yield line, row, None


def _expected_cell(cell: str) -> Any:
    stripped = cell.strip()
    if stripped[:1] in ("[", "{") or _is_number(stripped):
        try:
            return orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return cell
    return cell


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")


# -- items ------------------------------------------------------------------------------


def _item(raw: dict[str, Any], where: str) -> tuple[Item | None, list[str]]:
    problems: list[str] = []
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        problems.append(f"{where}: unknown field '{unknown[0]}' (known: {', '.join(_FIELDS)})")
    variables = raw.get("variables")
    messages = raw.get("messages")
    if variables is None and messages is None:
        problems.append(f"{where}: an item needs 'variables' or 'messages' (its input)")
    if variables is not None and messages is not None:
        problems.append(f"{where}: give 'variables' or 'messages', not both")
    if variables is not None and not isinstance(variables, dict):
        problems.append(f"{where}: 'variables' must be an object")
    if messages is not None:
        problems.extend(_message_problems(messages, where))
    tags = raw.get("tags", [])
    if not (isinstance(tags, list) and all(isinstance(t, str) and t for t in tags)):
        problems.append(f"{where}: 'tags' must be a list of non-empty strings")
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        problems.append(f"{where}: 'metadata' must be an object")
    given = raw.get("id")
    if given is not None and not (isinstance(given, str) and 0 < len(given) <= _MAX_ID):
        problems.append(f"{where}: 'id' must be a string of 1 to {_MAX_ID} characters")
    if problems:
        return None, problems
    item_input = {"messages": messages} if messages is not None else {"variables": variables}
    item = Item(
        id=given if given is not None else input_id(item_input),
        variables=variables,
        messages=tuple(messages) if messages is not None else None,
        expected=raw.get("expected"),
        tags=tuple(dict.fromkeys(tags)),
        metadata=metadata,
    )
    size = len(canonical(item.to_json()))
    if size > MAX_ITEM_BYTES:
        return None, [f"{where}: the item is {size} bytes; at most {MAX_ITEM_BYTES} are accepted"]
    return item, []


def _message_problems(messages: Any, where: str) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{where}: 'messages' must be a non-empty list"]
    problems = []
    for i, message in enumerate(messages):
        at = f"{where}: messages[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{at} must be an object")
            continue
        if message.get("role") not in _ROLES:
            problems.append(f"{at}.role must be one of {', '.join(_ROLES)}")
        content = message.get("content")
        if not isinstance(content, str | list):
            problems.append(f"{at}.content must be a string or a list of parts")
    return problems


# -- versions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def to_json(self) -> dict[str, list[str]]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
        }


def diff(old: Sequence[Item], new: Sequence[Item]) -> DatasetDiff:
    """Items added, removed and changed (same id, other content), by id."""
    before = {item.id: item.digest for item in old}
    after = {item.id: item.digest for item in new}
    return DatasetDiff(
        added=tuple(i for i in after if i not in before),
        removed=tuple(i for i in before if i not in after),
        changed=tuple(i for i in after if i in before and before[i] != after[i]),
    )
