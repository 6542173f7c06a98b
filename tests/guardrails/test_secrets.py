"""The secrets detectors' gate: a text without a word of 15 (or 32) characters is not
scanned for keys or tokens, so the gate must say exactly what str.split() would."""

from __future__ import annotations

import random

import pytest

from trimtab.guardrails.secrets import api_keys, has_word

# ASCII letters and separators, and the whitespace str.split() splits on that is easy to
# forget: the information separators \x1c-\x1f, NEL, no-break and ideographic spaces
_COMMON = ["a", "Z", "0", "-", "_", " "]
_RARE = ["\t", "\n", "\x0b", "\x1c", "\x1f", "\x85", "\u00a0", "\u2003", "\u3000", "\u200b", "é"]


@pytest.mark.parametrize("n", [15, 32])
def test_a_long_word_is_found_exactly_where_split_finds_one(n: int) -> None:
    rng = random.Random(15)
    for _ in range(20_000):
        alphabet = _COMMON if rng.random() < 0.5 else _COMMON + _RARE  # ASCII, or not
        text = "".join(
            rng.choice(alphabet) if rng.random() < 0.9 else rng.choice(_RARE)
            for _ in range(rng.randint(0, 3 * n))
        )
        expected = max(map(len, text.split()), default=0) >= n
        assert has_word(text, n) is expected, repr(text)


def test_keys_are_found_at_the_edges_of_the_gate() -> None:
    key = "xoxb-1234567890"  # 15 characters: the shortest key a prefix rule finds
    assert [f.rule for f in api_keys(f"token {key} leaked")] == ["pii.api_key.slack"]
    assert list(api_keys(f"token {key[:-1]} leaked")) == []
    token = "Zx8Qp2Lm9Rt4Vw7Ya1Bc3De5Fg6Hj0Kk"  # 32: the entropy rule's shortest
    assert [f.rule for f in api_keys(f"é {token}\u3000x")] == ["pii.api_key.entropy"]
