"""User scorer functions for the `python` scorer's tests (imported by dotted path)."""

from __future__ import annotations

import threading

from trimtab.evals.datasets import Item


def mentions_id(item: Item, answer: str) -> tuple[float, str]:
    return (1.0 if item.id in answer else 0.0), f"looked for {item.id}"


def half(item: Item, answer: str) -> float:
    return 0.5


def out_of_range(item: Item, answer: str) -> float:
    return 7.0


NOT_A_FUNCTION = 3


def words_per_ten(item: Item, answer: str) -> tuple[float, str]:
    words = len(answer.split())
    return min(1.0, words / 10), f"{words} words"


def raises(item: Item, answer: str) -> float:
    raise RuntimeError(f"cannot score {item.id}")


RELEASE = threading.Event()  # the test sets it once `blocks` has timed out


def blocks(item: Item, answer: str) -> float:
    RELEASE.wait(30)
    return 1.0
