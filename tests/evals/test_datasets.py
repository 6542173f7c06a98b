"""Dataset files: every bad row named by line and field, nothing kept from a bad file,
ids stable across versions, content-addressed versions, diffs by id."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimtab.evals.datasets import (
    MAX_ITEM_BYTES,
    DatasetError,
    Item,
    dataset_digest,
    diff,
    format_of,
    input_id,
    parse,
)


def jsonl(*rows: object) -> str:
    return "\n".join(orjson.dumps(r).decode() for r in rows) + "\n"


def test_jsonl_items() -> None:
    text = jsonl(
        {
            "id": "refund-1",
            "variables": {"q": "refund?"},
            "expected": "30 days",
            "tags": ["golden"],
        },
        {"messages": [{"role": "user", "content": "hi"}], "expected": ["hello", "hi"]},
        {"variables": {"q": "how much"}, "expected": 42, "metadata": {"source": "prod"}},
    )
    a, b, c = parse(text, "jsonl", "items.jsonl")
    assert (a.id, a.variables, a.expected, a.tags) == (
        "refund-1",
        {"q": "refund?"},
        "30 days",
        ("golden",),
    )
    assert b.messages == ({"role": "user", "content": "hi"},) and b.expected == ["hello", "hi"]
    assert b.id == input_id({"messages": [{"role": "user", "content": "hi"}]})
    assert c.expected == 42 and c.metadata == {"source": "prod"}


def test_every_problem_is_named_and_nothing_is_kept() -> None:
    text = "\n".join(
        [
            orjson.dumps({"variables": {"q": "fine"}}).decode(),
            "{not json",
            "[1, 2]",
            orjson.dumps({"expected": "no input"}).decode(),
            orjson.dumps(
                {"variables": {"q": 1}, "messages": [{"role": "user", "content": "x"}]}
            ).decode(),
            orjson.dumps({"messages": [{"role": "robot", "content": 3}]}).decode(),
            orjson.dumps({"variables": [], "tags": "golden", "colour": "red"}).decode(),
            orjson.dumps({"id": "dup", "variables": {}}).decode(),
            orjson.dumps({"id": "dup", "variables": {"other": 1}}).decode(),
        ]
    )
    with pytest.raises(DatasetError) as caught:
        parse(text, "jsonl", "cases.jsonl")
    problems = caught.value.problems
    assert problems == [
        "cases.jsonl line 2: not valid JSON (unexpected character, expected a string key: "
        "line 1 column 2 (char 1))",
        "cases.jsonl line 3: each line must be a JSON object",
        "cases.jsonl line 4: an item needs 'variables' or 'messages' (its input)",
        "cases.jsonl line 5: give 'variables' or 'messages', not both",
        "cases.jsonl line 6: messages[0].role must be one of system, user, assistant",
        "cases.jsonl line 6: messages[0].content must be a string or a list of parts",
        "cases.jsonl line 7: unknown field 'colour' "
        "(known: id, variables, messages, expected, tags, metadata)",
        "cases.jsonl line 7: 'variables' must be an object",
        "cases.jsonl line 7: 'tags' must be a list of non-empty strings",
        "cases.jsonl line 9: id 'dup' is already used on line 8",
    ]


def test_an_empty_file_and_an_oversized_item() -> None:
    with pytest.raises(DatasetError, match=r"empty\.jsonl: no items"):
        parse("\n\n", "jsonl", "empty.jsonl")
    big = jsonl({"variables": {"q": "x" * MAX_ITEM_BYTES}})
    with pytest.raises(
        DatasetError, match=r"big.jsonl line 1: the item is \d+ bytes; at most 262144"
    ):
        parse(big, "jsonl", "big.jsonl")


def test_line_separators_inside_strings_do_not_split_a_line() -> None:
    [item] = parse(jsonl({"variables": {"q": "a\u2028b\x85c"}}), "jsonl", "f")
    assert item.variables == {"q": "a\u2028b\x85c"}


def test_too_deep_a_line() -> None:
    deep: object = {"q": 1}
    for _ in range(70):
        deep = {"n": deep}
    with pytest.raises(DatasetError, match=r"deep\.jsonl line 1: nests deeper than 64 levels"):
        parse(jsonl({"variables": deep}), "jsonl", "deep.jsonl")


def test_csv_columns_map_to_variables_expected_tags_and_metadata() -> None:
    text = (
        "id,question,policy,expected,tags,metadata.source\n"
        'r1,refund?,30 days,"[""30 days"", ""thirty days""]",golden;refunds,prod\n'
        ",how much?,,12.5,,\n"
        "r3,plain,,a plain answer,safety,\n"
    )
    a, b, c = parse(text, "csv", "items.csv")
    assert a.id == "r1" and a.variables == {"question": "refund?", "policy": "30 days"}
    assert a.expected == ["30 days", "thirty days"] and a.tags == ("golden", "refunds")
    assert a.metadata == {"source": "prod"}
    assert b.expected == 12.5 and b.id.startswith("item_") and b.metadata == {"source": ""}
    assert c.expected == "a plain answer" and c.tags == ("safety",)


def test_csv_problems() -> None:
    with pytest.raises(DatasetError) as caught:
        parse("q,expected\nfine,yes\nonly-one\n", "csv", "bad.csv")
    assert caught.value.problems == ["bad.csv line 3: 1 cells; the header has 2"]
    with pytest.raises(DatasetError, match="column 'q' appears twice"):
        parse("q,q\n1,2\n", "csv", "dup.csv")
    with pytest.raises(DatasetError, match="column 2 has no name"):
        parse("q,\n1,2\n", "csv", "noname.csv")


def test_ids_stay_when_other_items_change() -> None:
    v1 = parse(jsonl({"variables": {"q": "a"}}, {"variables": {"q": "b"}}), "jsonl", "f")
    v2 = parse(jsonl({"variables": {"q": "b"}}, {"variables": {"q": "c"}}), "jsonl", "f")
    assert v1[1].id == v2[0].id


def test_versions_are_content_addressed() -> None:
    text = jsonl({"variables": {"q": "a"}, "expected": "x"})
    same = jsonl({"expected": "x", "variables": {"q": "a"}})  # key order does not matter
    assert dataset_digest(parse(text, "jsonl", "f")) == dataset_digest(parse(same, "jsonl", "f"))
    other = jsonl({"variables": {"q": "a"}, "expected": "y"})
    assert dataset_digest(parse(text, "jsonl", "f")) != dataset_digest(parse(other, "jsonl", "f"))


def test_diff_by_id() -> None:
    old = [Item("a", {"q": 1}), Item("b", {"q": 2}), Item("c", {"q": 3})]
    new = [Item("a", {"q": 1}), Item("b", {"q": 20}), Item("d", {"q": 4})]
    d = diff(old, new)
    assert (d.added, d.removed, d.changed) == (("d",), ("c",), ("b",))


def test_format_of() -> None:
    assert format_of("x.JSONL") == "jsonl" and format_of("x.ndjson") == "jsonl"
    assert format_of("x.csv") == "csv"
    with pytest.raises(DatasetError, match=r"ends in \.jsonl, \.ndjson or \.csv"):
        format_of("x.txt")


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=4), values)
def test_an_item_survives_its_own_export(variables: dict[str, object], expected: object) -> None:
    row = {"variables": variables} | ({} if expected is None else {"expected": expected})
    [item] = parse(jsonl(row), "jsonl", "f")
    [again] = parse(jsonl(item.to_json()), "jsonl", "f")
    assert again == item and again.digest == item.digest
