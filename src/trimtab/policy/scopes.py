"""Which concrete scope a configured scope pattern names for one request.

A pattern is `kind:value` (`tenant:acme`) or `kind:*`, which stands for each value of that
kind separately: for a request of tenant `acme`, `tenant:*` names `tenant:acme`.
"""

from __future__ import annotations

from collections.abc import Mapping


def resolve_scope(pattern: str, values: Mapping[str, str | None]) -> str | None:
    """The concrete scope (`tenant:acme`) the pattern applies to, or None if it does not apply.

    `values` maps a scope kind to the request's value of it (None: the request has none,
    e.g. no key when keys are not configured, or no feature tag).
    """
    kind, _, name = pattern.partition(":")
    value = values.get(kind)
    if value is None or value == "":
        return None
    if name == "*" or name == value:
        return f"{kind}:{value}"
    return None
