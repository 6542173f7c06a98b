"""The `similarity` scorer over many answers at once: every answer and expected string of
a batch of items encoded together (each distinct text once, in full batches of the model's
BATCH), then each answer's cosine to the best of its item's expected strings.

A run scores its answers' similarity this way, a batch of results at a time (the runner's
writer takes what is waiting, up to RECORD_BATCH); `build(Similarity)` scores one item
through the same function.
"""

from __future__ import annotations

from collections.abc import Sequence

from trimtab.evals.datasets import Item
from trimtab.evals.embeddings import MiniLM, ModelMissing, default_model
from trimtab.evals.scorers import Score, ScorerError, Similarity, clip, expected_strings


def load_model(spec: Similarity) -> MiniLM:
    """The embedding model, loaded once per process; ValueError naming the scorer and the
    install command when its package is missing."""
    try:
        return default_model()
    except ModelMissing as exc:
        raise ValueError(f"scorer '{spec.name}': {exc}") from None


def score_batch(
    model: MiniLM, specs: Sequence[Similarity], pairs: Sequence[tuple[Item, str]]
) -> list[dict[str, Score | ScorerError]]:
    """For each (item, answer), each similarity scorer's score, or its error on the item
    (no expected string to compare with)."""
    if not specs:
        return [{} for _ in pairs]
    wanted: list[list[str] | ScorerError] = []
    texts: dict[str, int] = {}
    for item, answer in pairs:
        texts.setdefault(answer, len(texts))
        try:
            options = expected_strings(item, specs[0].name)
        except ScorerError as exc:
            wanted.append(exc)
            continue
        wanted.append(options)
        for option in options:
            texts.setdefault(option, len(texts))
    vectors = model.encode(list(texts))
    out: list[dict[str, Score | ScorerError]] = []
    for (item, answer), found in zip(pairs, wanted, strict=True):
        if isinstance(found, ScorerError):
            out.append({s.name: _error(s, item) for s in specs})
            continue
        options = found
        similarities = vectors[[texts[o] for o in options]] @ vectors[texts[answer]]
        best = int(similarities.argmax())
        value = float(min(1.0, max(0.0, similarities[best])))
        reason = f"cosine {value:.3f} to '{clip(options[best])}'"
        out.append({s.name: Score(value, value >= s.threshold, reason) for s in specs})
    return out


def _error(spec: Similarity, item: Item) -> ScorerError:
    try:
        expected_strings(item, spec.name)
    except ScorerError as exc:
        return exc
    raise AssertionError("the item has expected strings")  # pragma: no cover
