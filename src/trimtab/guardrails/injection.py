"""Prompt-injection heuristics (pure): phrases that try to override the instructions, role-play
jailbreak markers, asks for the system prompt, and forged role delimiters.

Heuristics, not a model: each rule is a precompiled regex with an id and a score, so a
policy can see what fired and tune `threshold`. They catch the common phrasings; a
determined attacker rewording them is out of their reach (docs/guardrails.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import ahocorasick

from trimtab.guardrails.pii import Finding


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    score: float
    pattern: re.Pattern[str]
    # lowercase words one of which every match contains: a text with none is not scanned
    hints: tuple[str, ...]
    # lowercase words one of which every match starts with, right after a word boundary:
    # the pattern is tried only where one is, not at every character (empty: searched)
    starts: tuple[str, ...] = ()

    def search(
        self, text: str, lower: str, at: Sequence[int] | None = None
    ) -> re.Match[str] | None:
        """The leftmost match, as `pattern.search(text)` finds it; `lower` is text.lower(),
        `at` where this rule's start words are in it, in order (scan finds them for every
        rule in one pass; None: found here)."""
        if not self.starts or len(lower) != len(text) or _folds_apart(text):
            return self.pattern.search(text)
        if at is None:
            at = _start_words(lower)[RULES.index(self)]
        for i in at:
            m = self.pattern.match(text, i)
            if m is not None:
                return m
        return None


def _folds_apart(text: str) -> bool:
    """Whether text has a letter that matches an ASCII one under re.IGNORECASE though its
    str.lower() is not that letter (U+017F long s is an `s`, U+0131 dotless i an `i`):
    lowercasing cannot find a start word in it. (U+0130, dotted capital I, lowercases to two
    characters: the lengths then differ.)"""
    return "\u017f" in text or "\u0131" in text


def _rule(
    rule_id: str,
    score: float,
    hints: tuple[str, ...],
    *alternatives: str,
    starts: tuple[str, ...] = (),
) -> Rule:
    pattern = re.compile("|".join(alternatives), re.IGNORECASE | re.MULTILINE)
    return Rule(rule_id, score, pattern, hints, starts)


_ANY = r"(?:all|any|every|the|your|my|these|those|of)?\s*"
_EARLIER = r"(?:previous|prior|preceding|above|earlier|original|initial|system|developer)"
_QUALIFIER = r"(?:full|entire|exact|original|hidden|secret|initial)"
_ORDERS = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|context|messages?)"

RULES: tuple[Rule, ...] = (
    _rule(
        "injection.override",
        0.9,
        ("ignor", "disregard", "forget", "skip", "overrid", "bypass", "instruction", "now"),
        rf"\b(?:ignore|disregard|forget|skip|override|bypass)\s+{_ANY}(?:of\s+)?{_ANY}"
        rf"{_EARLIER}\s+{_ORDERS}",
        r"\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:you\s+(?:were|have\s+been)\s+"
        r"told|(?:said|written)\s+(?:above|before))",
        r"\bnew\s+(?:system\s+)?instructions?\s*:",
        r"\bfrom\s+now\s+on,?\s+you\s+(?:will|must|shall)\s+(?:ignore|not\s+follow|disregard)",
        starts=("ignore", "disregard", "forget", "skip", "override", "bypass", "new", "from"),
    ),
    _rule(
        "injection.roleplay",
        0.8,
        (
            *("dan", "stan", "dude", "aim", "anything", "mode", "jailbr"),
            *("restriction", "rule", "filter", "guideline", "limit", "censor"),
        ),
        r"\b(?:you\s+are|act\s+as|pretend\s+to\s+be|you're)\s+(?:now\s+)?(?:DAN|STAN|DUDE|AIM)\b",
        r"\bdo\s+anything\s+now\b",
        r"\b(?:developer|god|jailbreak|unrestricted|unfiltered)\s+mode\b",
        r"\bjailbr(?:eak|oken)\b",
        r"\b(?:pretend|imagine|act\s+as\s+if)\b.{0,60}\b(?:no|without|free\s+of)\s+"
        r"(?:restrictions|rules|filters|guidelines|limits|censorship)",
        starts=(
            *("you", "act", "pretend", "imagine", "do", "jailbr"),
            *("developer", "god", "unrestricted", "unfiltered"),
        ),
    ),
    _rule(
        "injection.exfiltration",
        0.85,
        ("prompt", "instruction", "system", "developer", "message", "repeat"),
        r"\b(?:reveal|show|print|repeat|output|display|leak|tell\s+me|give\s+me|"
        r"what\s+(?:is|are|were))\s+(?:me\s+)?(?:your\s+(?:" + _QUALIFIER + r"\s+)*"
        r"(?:system\s+prompt|system\s+message|instructions|prompt|developer\s+message)|"
        r"the\s+(?:(?:" + _QUALIFIER + r")\s+)+(?:instructions|prompt)|"
        r"the\s+(?:system\s+prompt|system\s+message|developer\s+message|prompt\s+above))",
        r"\brepeat\s+(?:everything|the\s+(?:text|words))\s+(?:above|before)\b",
        starts=(
            *("reveal", "show", "print", "repeat", "output", "display", "leak", "tell"),
            *("give", "what"),
        ),
    ),
    _rule(
        "injection.delimiter",
        0.6,
        ("<|", "inst]", "#", "system>"),
        r"<\|im_start\|>\s*system",
        r"<\|(?:system|endoftext)\|>",
        r"\[/?INST\]",
        r"^\s*#{2,}\s*(?:system|instruction)s?\s*:",
        r"</?system>",
    ),
)


def _automaton() -> ahocorasick.Automaton:
    """Every rule's start words in one Aho-Corasick automaton: each word with its length and
    the indexes of the rules it starts."""
    rules_of: dict[str, list[int]] = {}
    for index, rule in enumerate(RULES):
        for word in rule.starts:
            rules_of.setdefault(word, []).append(index)
    automaton = ahocorasick.Automaton()
    for word, indexes in rules_of.items():
        automaton.add_word(word, (len(word), tuple(indexes)))
    automaton.make_automaton()
    return automaton


# read only once built (like a compiled regex): one pass over a text finds every start word
# of every rule, where a str.find per word made one pass each (28 words)
_STARTS = _automaton()


def _start_words(lower: str) -> list[list[int]]:
    """For each rule, where its start words are in `lower` (every occurrence, overlapping
    ones too, as str.find finds them), in order."""
    at: list[list[int]] = [[] for _ in RULES]
    for end, (length, indexes) in _STARTS.iter(lower):
        for index in indexes:
            at[index].append(end - length + 1)
    for positions in at:
        positions.sort()
    return at


def scan(text: str, threshold: float = 0.0) -> list[Finding]:
    """The rules whose pattern matches `text` with a score of at least `threshold`."""
    found = []
    lower = text.lower()
    starts = _start_words(lower)
    for index, rule in enumerate(RULES):
        if rule.score < threshold:
            continue
        # a rule tried at its start words needs no hints: a text without one is not scanned
        if not rule.starts and not any(h in lower for h in rule.hints):
            continue
        m = rule.search(text, lower, starts[index])
        if m is not None:
            found.append(Finding(rule.id, "injection", m.start(), m.end(), rule.score))
    return found
