"""Secrets in text: API keys by their known prefixes and an entropy rule, JSON Web Tokens
by a header that decodes (guardrails/pii.py runs them with the personal-data detectors)."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Iterator

import orjson

from trimtab.guardrails.findings import Finding

# -- API keys and secrets ------------------------------------------------------------------

_KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("pii.api_key.anthropic", r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}"),
    ("pii.api_key.openai", r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ("pii.api_key.github", r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}"),
    ("pii.api_key.github_pat", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("pii.api_key.slack", r"xox[bpaors]-[A-Za-z0-9-]{10,}"),
    ("pii.api_key.aws", r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    ("pii.api_key.google", r"AIza[0-9A-Za-z_-]{35}"),
    ("pii.api_key.stripe", r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),
    ("pii.api_key.gitlab", r"glpat-[0-9A-Za-z_-]{20}"),
    ("pii.api_key.huggingface", r"hf_[A-Za-z0-9]{30,}"),
    ("pii.api_key.npm", r"npm_[A-Za-z0-9]{36}"),
    ("pii.api_key.sendgrid", r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
)
_KEYS = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    + "|".join(f"(?P<k{i}>{pattern})" for i, (_, pattern) in enumerate(_KEY_PREFIXES))
    + r")(?![A-Za-z0-9_-])"
)
# literal pieces one of the prefixes above needs: without any, the prefix pattern cannot match
_KEY_HINTS = ("sk-", "gh", "xox", "AKIA", "ASIA", "AIza", "k_", "glpat-", "hf_", "npm_", "SG.")
_TOKEN = re.compile(r"(?<![A-Za-z0-9_+/-])[A-Za-z0-9_+/-]{32,}={0,2}(?![A-Za-z0-9_+/=-])")
# content digests (subresource integrity) are random-looking by design and no secret
_DIGEST_PREFIXES = ("sha1-", "sha256-", "sha384-", "sha512-")
_ENTROPY_BITS = 4.2  # per character: random base62/64 tokens of 32+ chars sit near 4.8-5.2


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _random_token(value: str) -> bool:
    """Mixed case and digits with high entropy: hex digests, UUIDs and words are not."""
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    has_digit = any(c.isdigit() for c in value)
    return has_upper and has_lower and has_digit and _entropy(value) >= _ENTROPY_BITS


KEY_MIN = 15  # the shortest key a prefix rule matches (Slack's, `xoxb-` and 10 more)
_TOKEN_MIN = 32  # the shortest token the entropy rule looks at


def _word_of(n: int) -> re.Pattern[str]:
    """Matches (at 0) a text that has a word (a run without whitespace, as str.split()
    splits) of n characters or more: one walk over the words, each shorter one taken whole
    and never tried again (possessive)."""
    return re.compile(rf"\s*+(?:\S{{1,{n - 1}}}+\s++)*+\S{{{n}}}")


_WORD_OF = {n: _word_of(n) for n in (KEY_MIN, _TOKEN_MIN)}
# ASCII: whitespace (what str.isspace() and so str.split() call whitespace) to " ", every
# other character to "x"; a word of n characters is then n x's in a row
_WORD_CLASSES = str.maketrans({chr(c): " " if chr(c).isspace() else "x" for c in range(128)})
_XS = {n: "x" * n for n in (KEY_MIN, _TOKEN_MIN)}


def has_word(text: str, n: int) -> bool:
    """Whether text has a word of at least n (15 or 32) characters: keys and tokens have no
    whitespace, so a text without one has neither. ASCII text is translated to its classes
    (one table lookup a character, in C) and searched once: 3 µs on 2 KB where the list of
    its words took 17 and the pattern 10 (docs/guardrails.md); other text takes the pattern."""
    if text.isascii():
        return _XS[n] in text.translate(_WORD_CLASSES)
    return _WORD_OF[n].match(text) is not None


def api_keys(text: str) -> Iterator[Finding]:
    """API keys by their prefixes, and random-looking tokens by their entropy."""
    if not has_word(text, KEY_MIN):
        return
    if any(hint in text for hint in _KEY_HINTS):
        for m in _KEYS.finditer(text):
            index = int(next(name for name, v in m.groupdict().items() if v is not None)[1:])
            yield Finding(_KEY_PREFIXES[index][0], "api_key", m.start(), m.end(), 0.99)
    if not has_word(text, _TOKEN_MIN):
        return  # no token long enough for the entropy rule
    for m in _TOKEN.finditer(text):
        value = m.group()
        if value.startswith("eyJ"):
            continue  # a JWT's part: the jwt rule decides
        if value.startswith(_DIGEST_PREFIXES):
            continue
        if _random_token(value.strip("=")):
            yield Finding("pii.api_key.entropy", "api_key", m.start(), m.end(), 0.7)


# -- JWT -----------------------------------------------------------------------------------

_JWT = re.compile(
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{0,}(?![A-Za-z0-9_-])"
)


def _jwt_header_ok(part: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        header = orjson.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str)


def jwts(text: str) -> Iterator[Finding]:
    """JSON Web Tokens whose header decodes to JSON with an `alg`."""
    if "eyJ" not in text:
        return
    for m in _JWT.finditer(text):
        if _jwt_header_ok(m.group().split(".", 1)[0]):
            yield Finding("pii.jwt.header", "jwt", m.start(), m.end(), 0.99)
