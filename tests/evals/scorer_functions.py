"""User scorer functions for the `python` scorer's tests (imported by dotted path)."""

from __future__ import annotations

from trimtab.evals.datasets import Item


def mentions_id(item: Item, answer: str) -> tuple[float, str]:
    return (1.0 if item.id in answer else 0.0), f"looked for {item.id}"


def half(item: Item, answer: str) -> float:
    return 0.5


def out_of_range(item: Item, answer: str) -> float:
    return 7.0


NOT_A_FUNCTION = 3
