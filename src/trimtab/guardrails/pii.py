"""Structured PII and secrets: detect and redact, offline and deterministic (docs/guardrails.md).

Each entity type has a candidate regex and a validator: Luhn and the issuer ranges for
cards, mod-97 and the country's length and format for IBANs (python-stdnum), the number
plan of the region for phones (phonenumbers), the SSA's rules for SSNs, `ipaddress` for IP
addresses, known prefixes and an entropy rule for API keys, a decodable JSON header with
`alg` for JWTs (those two in guardrails/secrets.py). Findings carry the rule id, the entity
type, offsets and a score, never the matched text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

from trimtab.config import PII_ENTITIES
from trimtab.guardrails.findings import Finding as Finding
from trimtab.guardrails.secrets import KEY_MIN, api_keys, has_word, jwts


@dataclass(frozen=True, slots=True)
class Redacted:
    """The text with typed placeholders in place of each finding, and the findings."""

    text: str
    findings: tuple[Finding, ...]


class _Windows:
    """Where digit-bearing entities can be: the runs of digits of a text, runs closer than
    _GAP merged (an IBAN's ` WEST `, a phone's `) `), each padded by _PAD characters for a
    country code or a `+` before and the context after. The card, IBAN, SSN, IPv4 and phone
    patterns scan only these windows, not the whole text, and only the windows of runs with
    as many digits as the entity has at least (a card's separators keep its digits in one
    run): those are found by one regex, so the many short numbers of prose cost no
    Python step. Computed once per text and digit count."""

    __slots__ = ("_runs", "_spans", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._runs: dict[int, list[tuple[int, int]]] = {}
        self._spans: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def runs(self, digits: int) -> list[tuple[int, int]]:
        """The merged runs with at least `digits` (1, 4 or 7) digits; those with 7 are the
        runs with 4 that have 7, counted, not scanned for again."""
        found = self._runs.get(digits)
        if found is None:
            text = self.text
            if digits == 7:  # a run shorter than 7 characters cannot have 7 digits
                found = [
                    (s, e)
                    for s, e in self.runs(4)
                    if e - s >= 7 and sum(map(str.isdecimal, text[s:e])) >= 7
                ]
            else:
                pattern = (_RUNS_ASCII if text.isascii() else _RUNS)[digits]
                found = [m.span() for m in pattern.finditer(text)]
            self._runs[digits] = found
        return found

    def spans(self, digits: int = 1, reach: int = 0) -> list[tuple[int, int]]:
        """The windows of the merged runs with at least `digits` digits, each reaching
        `reach` characters further right (an entity whose tail has no digit: an IBAN's last
        groups)."""
        key = (digits, reach)
        found = self._spans.get(key)
        if found is None:
            n = len(self.text)
            found = []
            for s, e in self.runs(digits):
                s, e = max(0, s - _PAD), min(n, e + _PAD + reach)
                if found and s <= found[-1][1]:
                    found[-1] = (found[-1][0], e)
                else:
                    found.append((s, e))
            self._spans[key] = found
        return found

    def matches(
        self, pattern: re.Pattern[str], digits: int = 1, reach: int = 0
    ) -> Iterator[re.Match[str]]:
        """The pattern's matches in the windows of runs with at least `digits` digits."""
        text = self.text
        for s, e in self.spans(digits, reach):
            yield from pattern.finditer(text, s, e)


_GAP = 6
_PAD = 6
# a run of digits and the runs after it at most _GAP characters apart, with at least k
# digits in one match (the ASCII form is the same on ASCII text, and faster); the gap is
# possessive: a gap of more than _GAP non-digits is not tried again shorter
_RUNS = {k: re.compile(rf"\d(?:\D{{0,{_GAP}}}+\d){{{k - 1},}}") for k in (1, 4)}
_RUNS_ASCII = {k: re.compile(rf"[0-9](?:[^0-9]{{0,{_GAP}}}+[0-9]){{{k - 1},}}") for k in (1, 4)}
_Scan = Callable[[_Windows], Iterator[Finding]]

# -- email ---------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_EMAIL_REACH = 256  # past the `@`: a domain has at most 253 characters


def _emails(w: _Windows) -> Iterator[Finding]:
    """At each `@`, the pattern matched from where its local part can start (the run of
    local-part characters before it, at most 64): one match per `@`, so an address is
    found wherever it falls, however many came before it."""
    text = w.text
    n = len(text)
    done = 0  # the end of the last finding: no finding starts before it
    at = text.find("@")
    while at >= 0:
        start = at
        while start > max(done, at - 64) and text[start - 1] in _LOCAL:
            start -= 1
        stop = min(n, at + _EMAIL_REACH)
        m = _EMAIL.match(text, start, stop)
        cut = m is not None and m.end() == stop < n and text[stop] in _LOCAL  # ran past reach
        if m is not None and not cut and ".." not in m.group():
            yield Finding("pii.email", "email", m.start(), m.end(), 0.95)
            done = m.end()
            at = text.find("@", done)
        else:
            at = text.find("@", at + 1)


# -- credit cards --------------------------------------------------------------------------

# the number ends where a word would not go on: "4111 1111 1111 1111 235d..." is a card and
# a token, not a 19-digit card whose last group is the token's start
_CARD = re.compile(
    r"(?<![\d.,+-])\d{4}(?:([ -]?)\d{4}){2}\1\d{1,4}(?:\1\d{3})?(?![A-Za-z0-9_]|[,.-]\d)"
)
_AMEX = re.compile(r"(?<![\d.,+-])3[47]\d{2}([ -]?)\d{6}\1\d{5}(?![A-Za-z0-9_]|[,.-]\d)")


def _card_issuer(digits: str) -> bool:
    """Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay: the issuer ranges (IIN)."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if two == 62:
        return 16 <= n <= 19
    return False


def _cards(w: _Windows) -> Iterator[Finding]:
    seen: set[int] = set()
    for pattern in (_CARD, _AMEX):
        for m in w.matches(pattern, digits=7):  # 13 at least
            if m.start() in seen:
                continue
            digits = re.sub(r"[ -]", "", m.group())
            if 13 <= len(digits) <= 19 and _card_issuer(digits) and luhn.is_valid(digits):
                seen.add(m.start())
                yield Finding("pii.credit_card.luhn", "credit_card", m.start(), m.end(), 0.99)


# -- IBAN ----------------------------------------------------------------------------------

_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)


_IBAN_REACH = 24  # letters-only groups that may end an IBAN (IT, CH, FR: up to 23)


# how every IBAN starts: one search over the text, not one a window; on ASCII text, capitals
# to "A", digits to "0", the rest to " " (a table lookup a character, in C), then "AA00" is
# one substring search: 3 µs on 2 KB of prose where the pattern, tried at every capital,
# took 8
_IBAN_HEAD = re.compile(r"[A-Z][A-Z]\d\d")
_HEAD_CLASSES = str.maketrans(
    {
        chr(c): "A" if "A" <= chr(c) <= "Z" else "0" if "0" <= chr(c) <= "9" else " "
        for c in range(128)
    }
)


def _iban_head(text: str) -> bool:
    if text.isascii():
        return "AA00" in text.translate(_HEAD_CLASSES)
    return _IBAN_HEAD.search(text) is not None


def _ibans(w: _Windows) -> Iterator[Finding]:
    if not _iban_head(w.text):
        return
    for m in w.matches(_IBAN, reach=_IBAN_REACH):
        value = m.group()
        # a space-separated IBAN may be followed by a word that the regex swallowed:
        # try the longest prefix ending on a group boundary that validates
        end = len(value)
        while end > 0:
            candidate = value[:end]
            if stdnum_iban.is_valid(candidate):
                yield Finding("pii.iban.mod97", "iban", m.start(), m.start() + end, 0.99)
                break
            cut = candidate.rfind(" ")
            if cut <= 4:
                break
            end = cut


# -- US SSN --------------------------------------------------------------------------------

_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
# numbers the SSA published or that advertising made famous; never issued to a person
_SSN_INVALID = frozenset({"078051120", "219099999", "123456789"})


def _ssns(w: _Windows) -> Iterator[Finding]:
    for m in w.matches(_SSN, digits=7):  # 9
        area, group, serial = m.group(1), m.group(3), m.group(4)
        if area == "000" or area == "666" or area[0] == "9":
            continue
        if group == "00" or serial == "0000" or area + group + serial in _SSN_INVALID:
            continue
        yield Finding("pii.ssn.ssa_rules", "ssn", m.start(), m.end(), 0.9)


# -- IP addresses --------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)


def _ips(w: _Windows) -> Iterator[Finding]:
    text = w.text
    # an address's digits are one run (dots between them), which then holds its 3 dots:
    # without such a run no window is scanned
    if "." in text and any(text.count(".", s, e) >= 3 for s, e in w.runs(4)):
        for m in w.matches(_IPV4, digits=4):  # 1.2.3.4
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            yield Finding("pii.ip.v4", "ip", m.start(), m.end(), 0.9)
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            value = m.group()
            if "::" not in value and value.count(":") != 7:
                continue  # times, MAC addresses and ratios are not full addresses
            if value == "::" or len(value) < 3:
                continue
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            yield Finding("pii.ip.v6", "ip", m.start(), m.end(), 0.9)


# -- phone numbers -------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+.:/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,8}){1,5}"
    r"(?![\w]|[.-]\d)"
    r"|(?<![\w+.:/-])\+\d{7,15}(?![\w]|[.-]\d)"
)
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
DEFAULT_REGIONS = ("US",)
_DIGITS = re.compile(r"\d+")
_NATIONAL = phonenumbers.PhoneNumberFormat.NATIONAL
_INTERNATIONAL = phonenumbers.PhoneNumberFormat.INTERNATIONAL


def _grouped(value: str, number: phonenumbers.PhoneNumber) -> bool:
    """A number written without its country code must be grouped the way the region
    writes it: `2024-608234` is an invoice number, `202-460-8234` a phone number."""
    if value.startswith("+"):
        return True
    groups = _DIGITS.findall(value)
    if groups == _DIGITS.findall(phonenumbers.format_number(number, _NATIONAL)):
        return True  # the international form is formatted only when this one differs
    international = _DIGITS.findall(phonenumbers.format_number(number, _INTERNATIONAL))
    return groups in (international, international[1:])


def _phone_scanner(regions: tuple[str, ...]) -> _Scan:
    def scan(w: _Windows) -> Iterator[Finding]:
        for m in w.matches(_PHONE, digits=7):  # fewer are not a phone number
            value = m.group()
            digits = sum(c.isdigit() for c in value)
            if digits < 7 or digits > 15:
                continue
            if not value.startswith("+") and _DATE_LIKE.match(value):
                continue
            if "." in value and not value.startswith("+") and value.count(".") == 3:
                continue  # dotted quads are IP addresses or versions
            for region in regions if not value.startswith("+") else regions[:1]:
                try:
                    number = phonenumbers.parse(value, region)
                except phonenumbers.NumberParseException:
                    continue
                if phonenumbers.is_valid_number(number) and _grouped(value, number):
                    yield Finding("pii.phone.e164", "phone", m.start(), m.end(), 0.85)
                    break

    return scan


# -- the detector --------------------------------------------------------------------------

_SCANNERS: dict[str, _Scan] = {
    "email": _emails,
    "credit_card": _cards,
    "iban": _ibans,
    "ssn": _ssns,
    "ip": _ips,
    "api_key": lambda w: api_keys(w.text),
    "jwt": lambda w: jwts(w.text),
}
# when two findings overlap, the more specific entity wins: a JWT over the entropy rule,
# a card over a phone-shaped run of digits
_PRIORITY = {
    "jwt": 9,
    "email": 8,
    "iban": 7,
    "credit_card": 6,
    "ssn": 5,
    "ip": 4,
    "api_key": 3,
    "phone": 2,
}
PLACEHOLDER_NAMES = {entity: entity.upper() for entity in PII_ENTITIES}


_ANY_DIGIT = re.compile(r"\d")


def _may_hold(text: str) -> bool:
    """Whether text has what every entity needs one of: a digit (cards, IBANs, SSNs, IPv4,
    phones), an `@` (emails), a `:` (IPv6) or a word of 15 characters (API keys and JWTs):
    prose without any (a streamed word, most sentences) costs four scans in C, no detector."""
    return (
        "@" in text or ":" in text or _ANY_DIGIT.search(text) is not None or has_word(text, KEY_MIN)
    )


class UnknownEntity(ValueError):
    """An entity type this module does not detect."""


class Detector:
    """The compiled scanners for a set of entity types; build once, use for every request."""

    def __init__(
        self, entities: Collection[str] | None = None, regions: tuple[str, ...] = DEFAULT_REGIONS
    ) -> None:
        chosen = tuple(PII_ENTITIES) if entities is None else tuple(entities)
        unknown = [e for e in chosen if e not in PII_ENTITIES]
        if unknown:
            raise UnknownEntity(
                f"unknown entity {', '.join(unknown)} (known: {', '.join(PII_ENTITIES)})"
            )
        self.entities = frozenset(chosen)
        scanners = [_SCANNERS[e] for e in PII_ENTITIES if e in self.entities and e != "phone"]
        if "phone" in self.entities:
            scanners.append(_phone_scanner(regions))
        self._scanners = tuple(scanners)

    def detect(self, text: str) -> list[Finding]:
        """Non-overlapping findings in text order."""
        if not _may_hold(text):
            return []
        windows = _Windows(text)
        found = [f for scan in self._scanners for f in scan(windows)]
        if len(found) <= 1:
            return found
        found.sort(key=lambda f: (-_PRIORITY[f.entity], -(f.end - f.start), f.start))
        kept: list[Finding] = []
        for f in found:
            if all(f.end <= k.start or f.start >= k.end for k in kept):
                kept.append(f)
        kept.sort(key=lambda f: f.start)
        return kept

    def redactor(self) -> Redactor:
        """A redactor whose placeholders stay consistent over every text it sees."""
        return Redactor(self)


class Redactor:
    """Typed placeholders consistent across the texts of one request: the same value gets
    the same placeholder, so the model still sees that two mentions are the same."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self._names: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, value)
        name = self._names.get(key)
        if name is None:
            n = self._counts.get(entity, 0) + 1
            self._counts[entity] = n
            name = f"<{PLACEHOLDER_NAMES[entity]}_{n}>"
            self._names[key] = name
        return name

    def redact(self, text: str) -> Redacted:
        findings = self._detector.detect(text)
        if not findings:
            return Redacted(text, ())
        return Redacted(self.apply(text, findings), tuple(findings))

    def apply(self, text: str, findings: Collection[Finding]) -> str:
        """The text with each (non-overlapping, ordered) finding replaced by its placeholder."""
        parts: list[str] = []
        at = 0
        for f in findings:
            parts.append(text[at : f.start])
            parts.append(self.placeholder(f.entity, text[f.start : f.end]))
            at = f.end
        parts.append(text[at:])
        return "".join(parts)


@lru_cache(maxsize=64)
def _detector(entities: frozenset[str] | None) -> Detector:
    return Detector(entities)


def detect(text: str, entities: Collection[str] | None = None) -> list[Finding]:
    """The structured PII and secrets in text (every type when entities is None)."""
    return _detector(None if entities is None else frozenset(entities)).detect(text)


def redact(text: str, entities: Collection[str] | None = None) -> Redacted:
    """Text with each finding replaced by a typed placeholder (`<EMAIL_1>`), and the findings."""
    return _detector(None if entities is None else frozenset(entities)).redactor().redact(text)
