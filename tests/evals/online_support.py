"""The online-scoring tests' shared pieces: a suite with online scorers, a recorded
answer's body, the suites parsed, records written through the real telemetry store."""

from __future__ import annotations

import orjson
import yaml
from sqlalchemy import Engine

from trimtab.evals.suites import parse_suites
from trimtab.telemetry.store import TelemetryStore

SUITE = """
evals:
  support-live:
    route: support
    dataset: golden
    scorers:
      - {name: refuses, kind: refusal, expect: answer}
      - {name: short, kind: length, max: 40}
      - {name: right, kind: contains}
    online: {sample: 1.0, scorers: [refuses, short]}
"""


def answer(text: str) -> str:
    return orjson.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).decode()


def suites(text: str = SUITE):  # type: ignore[no-untyped-def]
    return parse_suites(yaml.safe_load(text), "evals.yaml")


def write(engine: Engine, records: list) -> None:  # type: ignore[type-arg]
    TelemetryStore(engine).write(records)
