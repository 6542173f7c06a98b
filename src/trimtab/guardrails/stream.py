"""Output checks on a streamed answer (pure): text deltas in, the text that may go out now.

`redact` and `block` on PII hold back only the characters that could still complete a
match: the trailing run of characters an entity can contain (letters, digits and
`@._%+-:/=()`), extended over single spaces between digit or capital groups (cards,
IBANs and phone numbers are written in groups). Everything before that run is scanned
and released, redacted, at once; the run waits for the next delta or the end. So a
sentence streams word by word, one word late; an unbroken token waits until it ends
(at most MAX_HOLD characters). `deny` is checked on each delta with the 256 characters
before it; `flag` PII and `json_schema` look at the whole answer at its end.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from time import perf_counter_ns

from trimtab.guardrails.pii import Redactor
from trimtab.guardrails.policy import CheckRun, Policy, Verdict, deny_check

MAX_HOLD = 4096  # an unbroken run longer than this is released (and scanned) in pieces
DENY_WINDOW = 256  # characters before a delta that a deny pattern may still span

_ENTITY = frozenset(string.ascii_letters + string.digits + "@._%+-:/=()")
_GROUP_END = frozenset(string.ascii_uppercase + string.digits + ")")
_GROUP_START = frozenset(string.ascii_uppercase + string.digits + "(+")


def safe_cut(text: str) -> int:
    """The index before which nothing can still become part of an entity."""
    i = len(text)
    while i > 0:
        c = text[i - 1]
        if c in _ENTITY or (
            c == " "
            and i >= 2
            and text[i - 2] in _GROUP_END
            and (i == len(text) or text[i] in _GROUP_START)
        ):
            i -= 1
        else:
            break
    if len(text) - i > MAX_HOLD:
        return len(text) - MAX_HOLD
    return i


class GuardrailBlocked(Exception):
    """An output check blocked the answer (in enforce mode)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.message())
        self.verdict = verdict


class OutputStream:
    """The output checks of one streamed answer (one choice or content block)."""

    def __init__(
        self, policy: Policy, redactor: Redactor, label: str | None = None, schema: bool = True
    ) -> None:
        """`label` names where a tool call's arguments are (findings carry it); `schema`
        False: the answer's json_schema does not describe this text (tool arguments)."""
        self._policy = policy
        self._label = label
        self._schema = schema
        self._redactor = redactor
        self.verdict = Verdict(policy.mode)
        pii = policy.out_pii
        enforce = policy.mode == "enforce"
        self._hold = pii is not None and enforce and pii.action in ("redact", "block")
        self._pii_run = CheckRun("output.pii", pii.action) if pii is not None else None
        self._deny_run = CheckRun("output.deny", "block") if policy.out_deny else None
        self._held = ""
        self._released = 0  # characters of the original answer scanned and let go
        self._tail = ""  # the last DENY_WINDOW characters seen, for deny patterns
        self._whole: list[str] = []  # the original answer, for checks at the end

    def feed(self, delta: str) -> str:
        """The text to send now for this delta (maybe empty); raises GuardrailBlocked."""
        if not delta:
            return ""
        self._whole.append(delta)
        if self._deny_run is not None:
            self._deny(delta)
        if not self._hold:
            return delta
        self._held += delta
        cut = safe_cut(self._held)
        if cut == 0:
            return ""
        segment, self._held = self._held[:cut], self._held[cut:]
        return self._scan(segment)

    def finish(self) -> str:
        """The held text, checked, and the checks on the whole answer; raises
        GuardrailBlocked. Call once, when the answer ends."""
        out = ""
        if self._hold and self._held:
            segment, self._held = self._held, ""
            out = self._scan(segment)
        policy, whole = self._policy, "".join(self._whole)
        if self._pii_run is not None:
            run = self._pii_run
            if not self._hold:  # flag, or shadow: one scan of the whole answer
                pii = policy.out_pii
                assert pii is not None
                self._timed(run, lambda: run.findings.extend(pii.detector.detect(whole)))
                run.where = [self._label] * len(run.findings)
                if run.findings:
                    run.outcome = "shadow" if policy.mode == "shadow" else pii.action
                    run.detail = "found " + ", ".join(
                        dict.fromkeys(f"{f.entity} ({f.rule})" for f in run.findings)
                    )
            self.verdict.runs.append(run)
            self._pii_run = None
        if self._deny_run is not None:
            self.verdict.runs.append(self._deny_run)
            self._deny_run = None
        if self._schema and policy.schema_on_fail is not None:
            policy.check_schema(self.verdict, whole)
            if self.verdict.blocked is not None:
                # the text is out: retry_once cannot take it back, it ends like block
                raise GuardrailBlocked(self.verdict)
        return out

    def _timed(self, run: CheckRun, work: Callable[[], object]) -> None:
        t = perf_counter_ns()
        try:
            work()
        finally:
            run.us += (perf_counter_ns() - t) / 1000

    def _deny(self, delta: str) -> None:
        run = self._deny_run
        assert run is not None
        window = self._tail + delta
        t = perf_counter_ns()
        probe = CheckRun("output.deny", "block")
        hit = deny_check(self._policy.out_deny, [window], at=None)(probe)
        run.us += (perf_counter_ns() - t) / 1000
        self._tail = window[-DENY_WINDOW:]
        if hit:
            run.detail = probe.detail
            run.findings = []  # offsets in a window would mislead; the rule is in detail
            self._fire(run)

    def _scan(self, segment: str) -> str:
        run, pii = self._pii_run, self._policy.out_pii
        assert run is not None and pii is not None
        t = perf_counter_ns()
        try:
            findings = pii.detector.detect(segment)
        except Exception as exc:  # fail closed: redact and block hold the text back
            run.us += (perf_counter_ns() - t) / 1000
            run.error = f"{type(exc).__name__}: {exc}"[:200]
            run.outcome = "error"
            self.verdict.runs.append(run)
            self.verdict.blocked = run
            self._pii_run = None
            raise GuardrailBlocked(self.verdict) from None
        base = self._released
        self._released += len(segment)
        if not findings:
            run.us += (perf_counter_ns() - t) / 1000
            return segment
        for f in findings:
            run.findings.append(type(f)(f.rule, f.entity, f.start + base, f.end + base, f.score))
            run.where.append(self._label)
        run.detail = "found " + ", ".join(
            dict.fromkeys(f"{f.entity} ({f.rule})" for f in run.findings)
        )
        if pii.action == "block":
            run.us += (perf_counter_ns() - t) / 1000
            self._fire(run)
        out = self._redactor.apply(segment, findings)
        run.outcome = "redact"
        run.us += (perf_counter_ns() - t) / 1000
        return out

    def _fire(self, run: CheckRun) -> None:
        """A blocking run fired: in enforce mode the stream ends; in shadow it is noted."""
        if self._policy.mode == "shadow":
            run.outcome = "shadow"
            return
        run.outcome = "block"
        self.verdict.runs.append(run)
        if run is self._deny_run:
            self._deny_run = None
        if run is self._pii_run:
            self._pii_run = None
        self.verdict.blocked = run
        raise GuardrailBlocked(self.verdict)

    def runs(self) -> list[CheckRun]:
        """Every run so far, including those still accumulating."""
        pending = [r for r in (self._pii_run, self._deny_run) if r is not None]
        return [*self.verdict.runs, *pending]
