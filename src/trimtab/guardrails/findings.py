"""What a detector found: the rule, the entity type, where, and a score, never the text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected entity: which rule, what type, where (offsets in the scanned text)."""

    rule: str
    entity: str
    start: int
    end: int
    score: float

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "score": self.score,
        }
