"""The one table builder, and the cell formats the tables share."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table


class _Table(Table):
    """A borderless table that fits the terminal without breaking a header inside a word.

    Rich narrows the widest columns first, down to a few characters, so at 80 columns an
    eleven-column summary printed 'reque' over 'sts'. Here each column gives up a
    character at a time, the widest first, but none goes below its header's longest word;
    cells then wrap at spaces, or fold a word too long, and are never cut short."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for column in self.columns:
            column.width = None  # the widths of an earlier print are not this one's
        natural = [
            max(
                [1]
                + [
                    Measurement.get(console, options, cell).maximum
                    for cell in (column.header, *column.cells)
                ]
            )
            for column in self.columns
        ]
        floors = [
            min(width, max([1] + [len(word) for word in str(column.header).split()]))
            for width, column in zip(natural, self.columns, strict=True)
        ]
        gaps = 2 * len(self.columns) - (0 if self.pad_edge else 2)  # padding (0, 1) each side
        widths = _narrowed(natural, floors, options.max_width - gaps)
        if widths is None:  # not even the headers' words fit: let rich fold them too
            widths = _narrowed(natural, [1] * len(natural), options.max_width - gaps) or natural
        for column, width in zip(self.columns, widths, strict=True):
            column.width = width
        yield from super().__rich_console__(console, options)


def _narrowed(widths: list[int], floors: list[int], room: int) -> list[int] | None:
    """`widths` narrowed to sum to at most `room`, the widest first and none below its
    floor; None when the floors do not fit."""
    if sum(floors) > room:
        return None
    widths = list(widths)
    excess = sum(widths) - room
    while excess > 0:
        widest = max(
            (i for i, (w, f) in enumerate(zip(widths, floors, strict=True)) if w > f),
            key=lambda i: widths[i],
        )
        widths[widest] -= 1
        excess -= 1
    return widths


def table(
    *columns: str,
    right: Collection[str] = (),
    title: str | None = None,
    pad_edge: bool = False,
) -> Table:
    """A borderless table with these columns (those in `right` right-aligned: numbers); on
    a narrow terminal its cells wrap, or fold where a word is too long, and are never cut
    short (an id or an owner half shown is no use); a header wraps only between words."""
    made = _Table(
        box=None, header_style="bold", pad_edge=pad_edge, title=title, title_justify="left"
    )
    for column in columns:
        made.add_column(column, justify="right" if column in right else "left", overflow="fold")
    return made


def when(iso: str | None) -> str:
    """An ISO 8601 time as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def version(number: Any) -> str:
    """A version number as the CLI names it: `v2`, or blank for none."""
    return "" if number is None else f"v{number}"
