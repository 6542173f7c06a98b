"""Rate limits, pure: which limits apply to a request, their counters and their messages.

Windows are sliding minutes kept by the shared state (`state.window_acquire` for requests,
`state.window_used`/`window_add` for tokens). Several configured limits can name the same
concrete scope (`tenant:*` and `tenant:acme`); they share one counter, checked against the
tightest limit, so a request is counted once per scope.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from trimtab.config import LimitConfig
from trimtab.policy.scopes import resolve_scope

WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One counter to check for a request: the tightest configured limit on a scope."""

    key: str  # the state key, e.g. "rl:rpm:tenant:acme"
    scope: str  # the concrete scope, e.g. "tenant:acme"
    pattern: str  # the configured scope it comes from, e.g. "tenant:*"
    limit: int


def rate_checks(
    limits: Iterable[LimitConfig], values: Mapping[str, str | None]
) -> tuple[list[LimitCheck], list[LimitCheck]]:
    """The (requests per minute, tokens per minute) checks that apply, one per scope."""
    rpm: dict[str, LimitCheck] = {}
    tpm: dict[str, LimitCheck] = {}
    for limit in limits:
        scope = resolve_scope(limit.scope, values)
        if scope is None:
            continue
        for kind, amount, table in (("rpm", limit.rpm, rpm), ("tpm", limit.tpm, tpm)):
            if amount is None:
                continue
            current = table.get(scope)
            if current is None or amount < current.limit:
                table[scope] = LimitCheck(f"rl:{kind}:{scope}", scope, limit.scope, amount)
    return list(rpm.values()), list(tpm.values())


def retry_seconds(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def tpm_retry_after(used: float, limit: float, now: float, window_s: float = WINDOW_S) -> float:
    """An upper estimate of how long until a token window's use falls below its limit.

    The sliding window counts the current fixed window plus the previous one weighted by
    the share of it still inside the last `window_s` seconds. Assuming no new traffic and,
    pessimistically, that all of `used` sits in the current fixed window, use stays put
    until that window ends and then decays linearly to zero over one more window.
    """
    if used < limit or used <= 0:
        return 0.0
    to_boundary = window_s - (now % window_s)
    return to_boundary + window_s * (1.0 - limit / used)


def rpm_message(check: LimitCheck, retry_after: str) -> str:
    origin = "" if check.pattern == check.scope else f" (limit '{check.pattern}')"
    return (
        f"rate limit exceeded: {check.scope} may send {check.limit} requests per minute"
        f"{origin}; retry in {retry_after} s"
    )


def tpm_message(check: LimitCheck, used: float, retry_after: str) -> str:
    origin = "" if check.pattern == check.scope else f" (limit '{check.pattern}')"
    return (
        f"token rate limit exceeded: {check.scope} used {int(used)} of {check.limit} tokens "
        f"per minute{origin}; retry in {retry_after} s"
    )
