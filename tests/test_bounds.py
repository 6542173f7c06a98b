"""The nesting bound and the YAML loader (pure)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from trimtab.bounds import MAX_DEPTH, exceeds_depth, safe_load_yaml


def lists(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_depth_counts_containers_not_scalars() -> None:
    assert not exceeds_depth("text") and not exceeds_depth(7)
    assert not exceeds_depth({}, limit=1) and exceeds_depth({"a": []}, limit=1)
    assert not exceeds_depth(lists(MAX_DEPTH)) and exceeds_depth(lists(MAX_DEPTH + 1))
    assert exceeds_depth({"wide": [1] * 1000, "deep": lists(MAX_DEPTH)})


def test_any_depth_is_checked_without_recursion() -> None:
    assert exceeds_depth(lists(200_000))  # far past Python's recursion limit


def test_yaml_within_the_bounds_loads_like_safe_load() -> None:
    text = "a: {b: [1, 2, {c: d}]}\ne: 'x'\n"
    assert safe_load_yaml(text) == yaml.safe_load(text)
    empty: Any = []
    for _ in range(MAX_DEPTH - 1):
        empty = [empty]
    assert safe_load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH) == empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x [1]\nb: *x\n", "YAML aliases (*x) are not accepted"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nests deeper than {MAX_DEPTH} levels"),
        ("- " * 10_000 + "x", f"nests deeper than {MAX_DEPTH} levels"),
    ],
)
def test_yaml_past_the_bounds_is_a_yaml_error(text: str, message: str) -> None:
    with pytest.raises(yaml.YAMLError, match=re.escape(message)):
        safe_load_yaml(text)


def test_validation_problems_name_the_source_the_key_path_and_unknown_keys() -> None:
    from pydantic import BaseModel, ConfigDict, ValidationError

    from trimtab.bounds import validation_problems

    class Item(BaseModel):
        model_config = ConfigDict(extra="forbid")
        size: int

    class File(BaseModel):
        items: dict[str, list[Item]]

    with pytest.raises(ValidationError) as caught:
        File.model_validate({"items": {"a": [{"size": 1}, {"size": "x", "colour": 1}]}})
    assert validation_problems(caught.value, "f.yaml") == [
        "f.yaml: items.a[1].size: Input should be a valid integer, "
        "unable to parse string as an integer",
        "f.yaml: items.a[1].colour: unknown key",
    ]
