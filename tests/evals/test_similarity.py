"""The `similarity` scorer: all-MiniLM-L6-v2 run with numpy from the model package's files
(evals/embeddings.py); the tokenizer and the safetensors reader on their own."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from trimtab.evals.datasets import Item
from trimtab.evals.embeddings import (
    WordPiece,
    basic_tokens,
    cosine,
    default_model,
    read_safetensors,
)
from trimtab.evals.scorers import Answer, Score, ScorerError, Similarity, build
from trimtab.evals.similarity import score_batch


def test_basic_tokens_lower_case_strip_accents_and_split_punctuation() -> None:
    assert basic_tokens("Hello, Café-au-lait!\tOK") == [
        "hello", ",", "cafe", "-", "au", "-", "lait", "!", "ok"
    ]  # fmt: skip
    assert basic_tokens("中文") == ["中", "文"]


def test_wordpiece_takes_the_longest_pieces_and_bounds_the_length() -> None:
    vocab = {
        t: i
        for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##believ", "##able", "a"])
    }
    pieces = WordPiece(vocab)
    assert pieces.ids("Unbelievable a xyz") == [2, 4, 5, 6, 7, 1, 3]
    assert pieces.ids("a " * 10, limit=5) == [2, 7, 7, 7, 3]


def test_a_safetensors_file_is_read(tmp_path: Path) -> None:
    data = np.arange(6, dtype=np.float32).tobytes()
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    assert read_safetensors(path)["w"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_the_model_gives_sentence_transformers_numbers() -> None:
    model = default_model()
    a = model.encode(["The new movie is awesome", "The cat sits outside"])
    b = model.encode(["The new movie is so great", "A man is playing guitar"])
    assert a.shape == (2, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # sentence-transformers' documented example: 0.8939 for this pair
    assert cosine(a, b)[0] == pytest.approx(0.8939, abs=0.002)
    assert cosine(a, b)[1] < 0.2


def test_the_scorer_takes_the_best_expected_answer() -> None:
    score = build(Similarity(kind="similarity", name="close", threshold=0.7))
    item = Item(id="q", variables={"q": "x"}, expected=["Refunds take 5 days", "We ship to Berlin"])
    near = score(item, Answer("A refund takes five days."))
    assert near.passed and near.value > 0.7 and "Refunds take 5 days" in near.reason
    far = score(item, Answer("The weather is sunny today."))
    assert not far.passed and far.value < 0.7
    with pytest.raises(ScorerError):
        score(Item(id="n", variables={"q": "x"}), Answer("no expected"))


def test_encoding_does_not_depend_on_the_order_or_the_batch() -> None:
    model = default_model()
    texts = ["short", "a much longer text about refunds and the parcels sent back", "mid size"]
    together = model.encode(texts, batch=2)
    apart = np.concatenate([model.encode([t]) for t in texts])
    assert np.allclose(together, apart, atol=1e-5)
    assert np.allclose(model.encode(texts[::-1])[::-1], together, atol=1e-5)
    assert model.encode([]).shape == (0, 384)


def test_a_batch_of_items_scores_as_each_item_alone() -> None:
    specs = [
        Similarity(kind="similarity", name="close", threshold=0.7),
        Similarity(kind="similarity", name="loose", threshold=0.3),
    ]
    shared = ["Refunds take 5 days", "We ship to Berlin"]  # the same expected for several
    items = [Item(id=f"q{i}", variables={"q": "x"}, expected=shared) for i in range(40)]
    items.append(Item(id="none", variables={"q": "x"}))  # no expected: an error on it
    answers = [f"A refund takes {i} days." if i % 2 else "It ships to Berlin." for i in range(40)]
    pairs = [*zip(items, answers, strict=False), (items[-1], "anything")]
    scored = score_batch(default_model(), specs, pairs)
    alone = build(specs[0])
    for (item, answer), found in zip(pairs[:-1], scored[:-1], strict=True):
        one = alone(item, Answer(answer))
        close, loose = found["close"], found["loose"]
        assert isinstance(close, Score) and isinstance(loose, Score)
        assert close.value == pytest.approx(one.value, abs=1e-5) and close.reason == one.reason
        assert loose.value == close.value and loose.passed == (close.value >= 0.3)
    errors = scored[-1]
    assert all(isinstance(e, ScorerError) for e in errors.values())
    assert "scorer 'loose' needs the item's 'expected'" in str(errors["loose"])
    assert score_batch(default_model(), [], pairs) == [{} for _ in pairs]
