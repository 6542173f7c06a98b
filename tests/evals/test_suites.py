"""The `evals:` section: suites parsed strictly, every problem naming the file, the suite
and the key."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from trimtab.evals.suites import SuitesError, parse_suites

GOOD = """
evals:
  support-golden:
    route: support-answer
    dataset: support-golden@3
    tags: [golden]
    scorers:
      - {name: correct, kind: contains}
      - {name: valid, kind: json_schema, schema: {type: object}}
    gate:
      min_pass_rate: {correct: 0.9}
      max_drop: {correct: 0.02}
  plain:
    model: gpt-mock
    dataset: smoke
    scorers: [{name: short, kind: length, max: 200}]
"""


def problems(data: Any) -> list[str]:
    with pytest.raises(SuitesError) as caught:
        parse_suites(data, "evals.yaml")
    return caught.value.problems


def test_suites() -> None:
    golden, plain = parse_suites(yaml.safe_load(GOOD), "evals.yaml")
    assert (golden.name, golden.route, golden.dataset, golden.dataset_version) == (
        "support-golden",
        "support-answer",
        "support-golden",
        3,
    )
    assert golden.tags == ("golden",) and [s.name for s in golden.scorers] == ["correct", "valid"]
    assert golden.gate.min_pass_rate == {"correct": 0.9} and golden.gate.max_errors == 0.05
    assert (plain.model, plain.dataset_version) == ("gpt-mock", None)
    assert golden.to_json()["scorers"][1] == {
        "name": "valid",
        "kind": "json_schema",
        "schema": {"type": "object"},
    }


def test_every_problem_names_the_suite_and_the_key() -> None:
    data = {
        "evals": {
            "a": {"route": "r", "dataset": "d", "scorers": [{"name": "x", "kind": "telepathy"}]},
            "b": {
                "route": "r",
                "model": "m",
                "dataset": "d",
                "scorers": [{"name": "x", "kind": "is_json"}],
            },
            "c": {"dataset": "d@0", "scorers": [], "colour": "red"},
            "d": {
                "route": "r",
                "dataset": "d",
                "scorers": [{"name": "x", "kind": "is_json"}, {"name": "x", "kind": "is_json"}],
            },
            "e": {
                "route": "r",
                "dataset": "d",
                "scorers": [{"name": "x", "kind": "is_json"}],
                "gate": {"max_drop": {"y": 0.1}, "min_pass_rate": {"x": 90}},
            },
            "bad name!": {
                "route": "r",
                "dataset": "d",
                "scorers": [{"name": "x", "kind": "is_json"}],
            },
        }
    }
    found = problems(data)
    assert any(
        p.startswith("evals.yaml: evals.a.scorers[0]: Input tag 'telepathy'") for p in found
    ), found
    assert "evals.yaml: evals.b: a suite runs against a route or a model: give one of them" in found
    assert any(
        p.startswith("evals.yaml: evals.c.dataset: String should match pattern") for p in found
    )
    assert (
        "evals.yaml: evals.c.scorers: List should have at least 1 item after validation, not 0"
        in found
    )
    assert "evals.yaml: evals.c.colour: unknown key" in found
    assert "evals.yaml: evals.d: scorer name 'x' is used twice" in found
    assert "evals.yaml: evals.e.gate: min_pass_rate.x: 90.0 is not a share between 0 and 1" in found
    assert any(p.startswith("evals.yaml: evals.bad name!: invalid suite name") for p in found)


def test_no_section_and_an_empty_one() -> None:
    assert problems({"routes": {}}) == ["evals.yaml: no 'evals' section"]
    assert problems({"evals": {}}) == ["evals.yaml: evals: no suites are defined"]
