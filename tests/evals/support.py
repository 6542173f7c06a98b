"""The eval tests' shared pieces: a suite file, datasets, and a gateway to run them on."""

from __future__ import annotations

from typing import Any

import orjson

SUITE_FILE = """
evals:
  support-golden:
    route: support-answer
    dataset: golden
    tags: [golden]
    scorers:
      - {name: echoed, kind: contains, threshold: 1}
      - {name: short, kind: length, max: 200}
    gate:
      max_drop: {echoed: 0.02}
  slow-golden:
    model: gpt-slow
    dataset: chats
    scorers:
      - {name: replied, kind: regex, pattern: "^mock reply"}
"""


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(orjson.dumps(r).decode() + "\n" for r in rows)


def golden(n: int) -> str:
    """Items whose expected answer the mock echoes back for even ids only."""
    rows = []
    for i in range(n):
        question = f"question {i}"
        expected = question if i % 2 == 0 else "never said"
        rows.append(
            {
                "id": f"q{i}",
                "variables": {"question": question, "policy": "p"},
                "expected": expected,
            }
        )
    return jsonl(rows)


def chats(n: int) -> str:
    return jsonl(
        [{"id": f"c{i}", "messages": [{"role": "user", "content": f"hello {i}"}]} for i in range(n)]
    )


# gateway config: a model the mock answers after 150 ms, so a run can be stopped mid-way
SLOW_MODELS = {"gpt-slow": {"provider": "upstream", "model": "slow-150"}}
