"""The PII detectors one by one: what each finds, what it must not, and redaction's contract."""

from __future__ import annotations

import ipaddress
import random

import pytest

from tests.guardrails.corpus import VALUES
from trimtab.config import PII_ENTITIES
from trimtab.guardrails import pii
from trimtab.guardrails.pii import Detector, UnknownEntity, detect, redact


def kinds(text: str) -> list[str]:
    return [f.entity for f in detect(text)]


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("write to jane.doe+tag@mail.example.co.uk today", "email"),
        ("call (415) 555-2671 now", "phone"),
        ("call +44 20 7946 0958 now", "phone"),
        ("call +49 30 901820 now", "phone"),
        ("card 4111 1111 1111 1111, thanks", "credit_card"),
        ("amex 3782 822463 10005.", "credit_card"),
        ("iban DE89 3704 0044 0532 0130 00 please", "iban"),
        ("iban GB82WEST12345698765432.", "iban"),
        ("ssn 123-45-6780 on file", "ssn"),
        ("from 192.168.10.20 and", "ip"),
        ("from 2001:db8::8a2e:370:7334 and", "ip"),
        ("key sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345 leaked", "api_key"),
        ("key AKIAIOSFODNN7EXAMPLE leaked", "api_key"),
        ("slack xoxb-123456789012-abcdefGHIJKL leaked", "api_key"),
        ("token Zx8Qp2Lm9Rt4Vw7Ya1Bc3De5Fg6Hj0Kk leaked", "api_key"),
        (
            "bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "jwt",
        ),
    ],
)
def test_each_entity_is_found(text: str, entity: str) -> None:
    assert kinds(text) == [entity]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails Luhn",
        "iban DE89 3704 0044 0532 0130 01 fails mod-97",
        "ssn 000-12-3456 and 666-12-3456 and 912-34-5678 are never issued",
        "version 1.2.3 and build 10.0.19041.1",
        "at 2024-03-15 10:22:31 UTC",
        "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "jwt-shaped eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxIn0.abc without alg",
        "mac 00:1A:2B:3C:4D:5E and ratio 16:9",
    ],
)
def test_hard_negatives_are_not_found(text: str) -> None:
    assert kinds(text) == []


def test_redact_is_consistent_within_a_call_and_keeps_no_matched_text() -> None:
    text = "a@x.example wrote to b@x.example, then a@x.example again from 10.0.0.1"
    result = redact(text)
    assert result.text == "<EMAIL_1> wrote to <EMAIL_2>, then <EMAIL_1> again from <IP_1>"
    assert [(f.entity, text[f.start : f.end]) for f in result.findings] == [
        ("email", "a@x.example"),
        ("email", "b@x.example"),
        ("email", "a@x.example"),
        ("ip", "10.0.0.1"),
    ]
    assert all(
        set(f.as_dict()) == {"rule", "entity", "start", "end", "score"} for f in result.findings
    )


def test_entities_restrict_what_is_detected() -> None:
    text = "a@x.example from 10.0.0.1"
    assert redact(text, ["ip"]).text == "a@x.example from <IP_1>"
    assert redact(text, []).text == text


def test_an_unknown_entity_is_refused() -> None:
    with pytest.raises(UnknownEntity, match="unknown entity name"):
        Detector(["name"])


def test_every_configurable_entity_has_a_detector() -> None:
    assert Detector().entities == frozenset(PII_ENTITIES)


def test_every_address_is_found_however_many_came_before() -> None:
    # a long text's addresses one after another: the third once fell where the window
    # around the second `@` ended, mid-address, and was missed
    line = "jane.c4849dbf@example.com paid with card ending 1111, reply to ops@example.org"
    text = "\x00\n\x00".join([line] * 8)
    emails = [text[f.start : f.end] for f in detect(text) if f.entity == "email"]
    assert emails == ["jane.c4849dbf@example.com", "ops@example.org"] * 8


def test_an_address_longer_than_its_reach_is_not_cut_short() -> None:
    # 279 characters of domain (more than a domain may have): no finding that would
    # redact its first 256 and leave the rest
    domain = ("a" * 60 + ".") * 4 + "b" * 30 + ".com"
    assert [f for f in detect(f"x@{domain}") if f.entity == "email"] == []
    fits = ("a" * 60 + ".") * 3 + "example.com"
    assert [(f.start, f.end) for f in detect(f"x@{fits}")] == [(0, 2 + len(fits))]


@pytest.mark.parametrize(
    ("text", "card"),
    [
        # a token right after a card: its first digits are not the card's fifth group
        ("card 4111 1111 1111 1111 235d25e8177a4705adcfa1e9894d97f3", "4111 1111 1111 1111"),
        ("amex 3782 822463 10005 9abc", "3782 822463 10005"),
        ("卡号4111111111111111请", "4111111111111111"),  # a letter of another script ends it
    ],
)
def test_a_card_ends_where_a_word_would_go_on(text: str, card: str) -> None:
    found = [text[f.start : f.end] for f in detect(text) if f.entity == "credit_card"]
    assert found == [card]


def test_windows_too_short_for_an_entity_hide_none_of_its_matches() -> None:
    """The card, SSN, IPv4 and phone patterns scan only the windows of runs of digits with
    as many digits as the entity at least: they lose no match by it."""
    rng = random.Random(15)
    noise = ["order 48213", "at 10:40", "v2.4.1", "7.95 EUR", "3 to 5", "2024-11-28", "42"]
    gated = [(pii._CARD, 7), (pii._AMEX, 7), (pii._SSN, 7), (pii._IPV4, 4), (pii._PHONE, 7)]
    for _ in range(400):
        values = [VALUES[e](rng) for e in ("credit_card", "ssn", "ip", "phone", "iban")]
        parts = rng.sample(noise, 3) + rng.sample(values, 2)
        rng.shuffle(parts)
        text = rng.choice([" ", ", ", " and ", "\n"]).join(parts)
        for pattern, digits in gated:
            every = [m.span() for m in pii._Windows(text).matches(pattern)]
            kept = [m.span() for m in pii._Windows(text).matches(pattern, digits=digits)]
            if pattern is pii._PHONE:  # the phone rule wants 7 digits: shorter ones may go
                every = [s for s in every if sum(c.isdigit() for c in text[s[0] : s[1]]) >= 7]
                assert set(every) <= set(kept), text
            else:
                assert kept == every, text


def test_the_gapped_runs_are_the_runs_the_backtracking_pattern_finds() -> None:
    """The digit runs' gap is possessive: the same runs as the pattern that backtracked."""
    import re

    before = {k: re.compile(rf"\d(?:\D{{0,6}}\d){{{k - 1},}}") for k in (1, 4)}
    rng = random.Random(15)
    for _ in range(5_000):
        text = "".join(rng.choice("0123456789 .-a:/x\n٣") for _ in range(rng.randint(0, 80)))
        for k in (1, 4):
            assert pii._Windows(text).runs(k) == [m.span() for m in before[k].finditer(text)]


def test_the_iban_head_gate_says_what_the_pattern_says() -> None:
    rng = random.Random(15)
    for _ in range(20_000):
        text = "".join(rng.choice("AZBa09 x.é٣") for _ in range(rng.randint(0, 16)))
        assert pii._iban_head(text) is (pii._IBAN_HEAD.search(text) is not None), text


def test_the_ipv4_gate_loses_no_address() -> None:
    """IPv4 is scanned only when a run of digits holds three dots: every address the
    pattern finds over the whole text is still found."""
    rng = random.Random(15)
    pieces = ["10.0.0.1", "192.168.1.20", "1.2.3", "v2.4.1", "7.95", "3.", "2024.11.28", "a"]
    for _ in range(3_000):
        text = rng.choice([" ", ".", ". ", ":"]).join(rng.choices(pieces, k=rng.randint(1, 5)))
        found = [(f.start, f.end) for f in pii._ips(pii._Windows(text)) if f.rule == "pii.ip.v4"]
        every = []
        for m in pii._IPV4.finditer(text):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            every.append(m.span())
        assert found == every, text


def test_a_text_the_gate_skips_has_nothing_any_detector_finds() -> None:
    """detect() skips a text with no digit, `@`, `:` or 15-character word; no scanner finds
    anything in such texts, near misses included (key prefixes, a JWT's head, capitals)."""
    rng = random.Random(15)
    words = ["sk-", "ghp_", "AKIA", "eyJ", "SG.", "xoxb-", "DE", "GB", "WEST", "a.b", "-", "mail"]
    words += ["Hello", "the", "parcel", "arrived", "(", ")", "+", "=", "/", "%", "é", "abcd::ef"]
    words += ["AKIAABCDEFGHIJKLMNOP", "a@b.io"]  # each found, were it not for the gate's tests
    scanners = Detector()._scanners
    for _ in range(3_000):
        text = rng.choice(["", " ", "\n"]).join(rng.choices(words, k=rng.randint(1, 12)))
        if pii._may_hold(text):
            continue
        assert [f for scan in scanners for f in scan(pii._Windows(text))] == [], text
