"""The vocabulary every layer passes around: wire formats, roles, principals, operations,
scopes and request ids. Pure: it imports nothing from trimtab, and everything may import it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Literal

# The two wire formats trimtab speaks to clients and providers.
Wire = Literal["openai", "anthropic"]

# What a provider call does.
Operation = Literal["chat", "embeddings"]

# What a key may do; docs/keys.md has the table.
Role = Literal["app", "viewer", "operator", "admin"]
MODEL_CALLERS: frozenset[str] = frozenset({"app", "operator", "admin"})
READERS: frozenset[str] = frozenset({"viewer", "operator", "admin"})
OPERATORS: frozenset[str] = frozenset({"operator", "admin"})  # who change what serves

# Who owns a route: a tenant's name, or SHARED for a route every tenant sees.
Scope = str
SHARED: Scope = ""

# The name of a route, a dataset or a suite: what a URL path segment and a YAML key can
# both carry without quoting.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
NAME_RULE = (
    "use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters"
)


def name_problem(kind: str, name: object) -> str | None:
    """Why `name` is not a valid name of a `kind` ("route", "suite"), or None."""
    if isinstance(name, str) and re.fullmatch(NAME_PATTERN, name):
        return None
    return f"invalid {kind} name: {NAME_RULE}"


# `req_` + a time-ordered prefix (ms) + randomness: sortable, unique across processes.
RequestId = str


def new_request_id() -> RequestId:
    return f"req_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a request. `key_id` identifies the key without revealing it."""

    tenant: str
    role: Role
    key_id: str | None = None
    owner: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


OPEN_ACCESS = Principal(tenant="default", role="admin")


# The feature an eval run's calls carry: `eval:RUN` (evals/runner.py). Their records stay
# out of production figures (summaries, costs, SLOs, canary analysis, the request list)
# unless a filter names such a feature (telemetry/production.py is the SQL side).
EVAL_FEATURE_PREFIX = "eval:"


def is_eval_feature(feature: str | None) -> bool:
    """Whether a record with this feature is eval traffic, not production's."""
    return feature is not None and feature.startswith(EVAL_FEATURE_PREFIX)


# The finish reasons that mean the model refused to answer, in the providers' words
# (gen_ai.response.finish_reasons): OpenAI's `content_filter`, Anthropic's `refusal` stop
# reason (providers/translate.py maps each to the other for a client of the other wire
# format). The canary's refusal rate (rollouts/arms.py) and the rollups' `refused` count
# (telemetry/rollups.py) both judge by this one tuple.
REFUSAL_FINISH_REASONS: tuple[str, ...] = ("content_filter", "refusal")
_REFUSALS = frozenset(REFUSAL_FINISH_REASONS)


def is_refusal(finish_reasons: list[str] | None) -> bool:
    """Whether a response with these finish reasons (one per choice) was refused: any of
    them is a refusal reason."""
    return finish_reasons is not None and not _REFUSALS.isdisjoint(finish_reasons)
