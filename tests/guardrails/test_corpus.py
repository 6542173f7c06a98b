"""The quality bars of the PII detectors, measured on the generated corpus
(tests/guardrails/corpus.py): recall >= 99 % and precision >= 95 % per entity type."""

from __future__ import annotations

import pytest

from tests.guardrails.corpus import NEGATIVES, PER_ENTITY, SEED, build, measure, misses
from trimtab.config import PII_ENTITIES

RECALL = 0.99
PRECISION = 0.95


def test_the_corpus_is_large_and_labelled() -> None:
    snippets = build()
    assert len(snippets) >= 2_000
    assert len(snippets) == PER_ENTITY * len(PII_ENTITIES) + NEGATIVES
    assert build() == snippets  # a fixed seed: the same corpus every time
    for s in snippets:
        for _, start, end in s.labels:
            assert 0 <= start < end <= len(s.text)
    negatives = [s for s in snippets if not s.labels]
    assert len(negatives) >= NEGATIVES


@pytest.mark.parametrize("seed", [SEED, 1, 2])
def test_recall_and_precision_per_entity_type_meet_the_bars(seed: int) -> None:
    snippets = build(seed)
    scores = measure(snippets)
    shown = "\n".join(f"{t!r}: missed {m}, spurious {s}" for t, m, s in misses(snippets)[:10])
    for entity, score in scores.items():
        assert score.labelled >= PER_ENTITY, entity
        assert score.recall >= RECALL, f"{entity} recall {score.recall:.2%}\n{shown}"
        assert score.precision >= PRECISION, f"{entity} precision {score.precision:.2%}\n{shown}"
