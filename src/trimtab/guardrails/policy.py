"""A guardrail policy compiled once, run on every request (pure): input and output checks
over plain texts, each run timed and recorded (docs/guardrails.md).

The gateway hands texts in (the messages' contents, the answer's text) and gets a verdict
back: the runs (check, configured action, outcome, findings, µs), the rewritten texts when
something was redacted, and the run that blocks, if one does. In `shadow` mode everything
is detected and recorded and nothing is changed. A check that raises is an `error` run:
fail closed for `block` and `redact` (the request is refused: serving it would do what
the policy forbids), open for `flag` and in shadow mode.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import jsonschema
import orjson

from trimtab.config import GuardrailsConfig, PiiGuardConfig
from trimtab.guardrails import injection
from trimtab.guardrails.pii import Detector, Finding, Redactor

Outcome = str  # "pass" | "redact" | "block" | "flag" | "shadow" | "error"
_ERROR_CHARS = 200


@dataclass(slots=True)
class CheckRun:
    """One check on one request: what it is, what it was told to do, what happened."""

    check: str  # "input.pii", "output.json_schema", ...
    action: str  # the configured action: redact, block, flag, retry_once
    outcome: Outcome = "pass"
    us: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    # where each finding is: the index of the text scanned (the gateway relabels it)
    where: list[int | str | None] = field(default_factory=list)
    detail: str | None = None  # why it fired, naming no matched text
    error: str | None = None

    @property
    def fired(self) -> bool:
        return self.outcome != "pass"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "action": self.action,
            "outcome": self.outcome,
            "fired": self.fired,
            "us": round(self.us, 1),
        }
        if self.findings:
            out["findings"] = [
                f.as_dict() if at is None else {**f.as_dict(), "message": at}
                for f, at in zip(self.findings, self.where, strict=True)
            ]
        if self.detail is not None:
            out["detail"] = self.detail
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(slots=True)
class Verdict:
    """The runs of one side (input or output) of one request."""

    mode: str
    runs: list[CheckRun] = field(default_factory=list)
    blocked: CheckRun | None = None
    texts: list[str] | None = None  # the rewritten texts, when a redaction changed one
    retry: bool = False  # output: a json_schema with on_fail retry_once failed

    def message(self) -> str:
        """Why the request was refused, naming the check and never the matched text."""
        run = self.blocked
        assert run is not None
        if run.error is not None:
            return (
                f"guardrail {run.check} failed ({run.error}); a policy that blocks fails "
                "closed, so the request was refused"
            )
        places = ", ".join(dict.fromkeys(_place(at) for at in run.where if at is not None))
        return f"refused by guardrail {run.check}: {run.detail}" + (
            f" in {places}" if places else ""
        )


def _place(at: int | str) -> str:
    return f"messages[{at}]" if isinstance(at, int) else at


def _finding_kinds(run: CheckRun) -> str:
    return ", ".join(dict.fromkeys(f"{f.entity} ({f.rule})" for f in run.findings))


class _Pii:
    def __init__(self, cfg: PiiGuardConfig) -> None:
        self.action = cfg.action
        self.detector = Detector(cfg.entities, tuple(cfg.regions) or ("US",))


class Policy:
    """A compiled guardrail policy: regexes, detectors and the schema validator built once."""

    def __init__(self, config: GuardrailsConfig) -> None:
        self.config = config
        self.mode = config.mode
        inp, out = config.input, config.output
        self.in_pii = _Pii(inp.pii) if inp is not None and inp.pii is not None else None
        self.injection = inp.injection if inp is not None else None
        self.max_input_tokens = inp.max_input_tokens if inp is not None else None
        self.in_deny = [re.compile(p) for p in inp.deny] if inp is not None else []
        self.out_pii = _Pii(out.pii) if out is not None and out.pii is not None else None
        self.out_deny = [re.compile(p) for p in out.deny] if out is not None else []
        schema = out.json_schema if out is not None else None
        self.schema_on_fail = schema.on_fail if schema is not None else None
        self._validator = (
            jsonschema.validators.validator_for(schema.schema_)(schema.schema_)
            if schema is not None
            else None
        )
        self.session = config.session
        self.has_input = bool(
            self.in_pii or self.injection or self.max_input_tokens or self.in_deny
        )
        self.has_output = bool(self.out_pii or self.out_deny or self._validator)

    # -- running checks --------------------------------------------------------------------

    def _run(
        self, verdict: Verdict, check: str, action: str, body: Callable[[CheckRun], bool]
    ) -> CheckRun:
        """Run one check: `body` fills the run and says whether it fired."""
        run = CheckRun(check, action)
        t = perf_counter_ns()
        try:
            fired = body(run)
        except Exception as exc:  # a guardrail that raises is this request's error
            run.error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
            run.outcome = "error"
            if self.mode == "enforce" and action != "flag":
                verdict.blocked = run
        else:
            if fired:
                run.outcome = "shadow" if self.mode == "shadow" else action
                if run.outcome in ("block", "retry_once"):
                    verdict.blocked = run
        run.us = (perf_counter_ns() - t) / 1000
        verdict.runs.append(run)
        return run

    def check_input(
        self, texts: Sequence[str], tokens: int, redactor: Redactor | None = None
    ) -> Verdict:
        """The input checks over the request's texts (one per message content part)."""
        verdict = Verdict(self.mode)
        limit = self.max_input_tokens
        if limit is not None:

            def too_long(run: CheckRun) -> bool:
                run.detail = f"about {tokens} input tokens, more than max_input_tokens {limit}"
                return tokens > limit

            self._run(verdict, "input.max_input_tokens", "block", too_long)
            if verdict.blocked:
                return verdict
        if self.in_deny:
            self._run(verdict, "input.deny", "block", deny_check(self.in_deny, texts))
            if verdict.blocked:
                return verdict
        inj = self.injection
        if inj is not None:

            def injected(run: CheckRun) -> bool:
                for i, text in enumerate(texts):
                    for f in injection.scan(text, inj.threshold):
                        run.findings.append(f)
                        run.where.append(i)
                rules = ", ".join(dict.fromkeys(f.rule for f in run.findings))
                run.detail = f"prompt injection suspected ({rules})"
                return bool(run.findings)

            self._run(verdict, "input.injection", inj.action, injected)
            if verdict.blocked:
                return verdict
        if self.in_pii is not None:
            self._pii(verdict, "input.pii", self.in_pii, texts, redactor)
        return verdict

    def check_output(
        self, text: str, redactor: Redactor | None = None, schema: bool = True
    ) -> Verdict:
        """The output checks over the answer's text; `schema` False for a tool call's
        arguments, which the answer's json_schema does not describe."""
        verdict = Verdict(self.mode)
        if self.out_deny:
            self._run(verdict, "output.deny", "block", deny_check(self.out_deny, [text], at=None))
            if verdict.blocked:
                return verdict
        if self.out_pii is not None:
            self._pii(verdict, "output.pii", self.out_pii, [text], redactor, at=None)
            if verdict.blocked:
                return verdict
        if schema and self._validator is not None:
            self.check_schema(verdict, verdict.texts[0] if verdict.texts else text)
        return verdict

    def check_schema(self, verdict: Verdict, text: str) -> None:
        validator, on_fail = self._validator, self.schema_on_fail
        assert validator is not None and on_fail is not None

        def invalid(run: CheckRun) -> bool:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                run.detail = f"the answer is not JSON ({exc.args[0].split(':')[0]})"
                return True
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
            if error is None:
                return False
            path = "/".join(str(p) for p in error.absolute_path) or "(root)"
            run.detail = f"the answer does not match the schema at {path} ({error.validator})"
            return True

        run = self._run(verdict, "output.json_schema", on_fail, invalid)
        if run.outcome == "retry_once":
            verdict.retry = True

    def _pii(
        self,
        verdict: Verdict,
        check: str,
        pii: _Pii,
        texts: Sequence[str],
        redactor: Redactor | None,
        at: int | None = 0,
    ) -> None:
        out: list[str] = list(texts)

        def found(run: CheckRun) -> bool:
            for i, text in enumerate(texts):
                findings = pii.detector.detect(text)
                if not findings:
                    continue
                run.findings.extend(findings)
                run.where.extend([i if at is not None else None] * len(findings))
                if pii.action == "redact" and self.mode == "enforce":
                    r = redactor if redactor is not None else pii.detector.redactor()
                    out[i] = r.apply(text, findings)
            run.detail = f"found {_finding_kinds(run)}"
            return bool(run.findings)

        run = self._run(verdict, check, pii.action, found)
        if run.outcome == "redact":
            verdict.texts = out

    def new_redactor(self) -> Redactor:
        """A redactor for one request: placeholders consistent over its input and output."""
        pii = self.in_pii or self.out_pii
        return (pii.detector if pii is not None else Detector(())).redactor()


def deny_check(
    patterns: Sequence[re.Pattern[str]], texts: Sequence[str], at: int | None = 0
) -> Callable[[CheckRun], bool]:
    def denied(run: CheckRun) -> bool:
        for n, pattern in enumerate(patterns):
            for i, text in enumerate(texts):
                m = pattern.search(text)
                if m is not None:
                    run.findings.append(Finding(f"deny[{n}]", "deny", m.start(), m.end(), 1.0))
                    run.where.append(i if at is not None else None)
                    run.detail = f"deny pattern [{n}] matched"
                    return True
        return False

    return denied


class Policies:
    """The gateway's default policy and each route version's, compiled once per version."""

    def __init__(self, default: GuardrailsConfig | None) -> None:
        self.default = _compiled(default) if default is not None else None
        self._by_digest: dict[str, Policy | None] = {}

    def for_version(self, digest: str, guardrails: Mapping[str, Any] | None) -> Policy | None:
        """A version's own policy, or the default when it sets none."""
        if guardrails is None:
            return self.default
        try:
            return self._by_digest[digest]
        except KeyError:
            policy = _compiled(GuardrailsConfig.model_validate(guardrails))
            self._by_digest[digest] = policy
            return policy


def _compiled(config: GuardrailsConfig) -> Policy | None:
    policy = Policy(config)
    if not policy.has_input and not policy.has_output and policy.session is None:
        return None  # nothing to do: no work at all on the hot path
    return policy
