"""`limits:`, `budgets:` and `reservation:`: rate limits and budgets over scopes, and the
output tokens a budget reserves before a call (docs/policy.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from trimtab.config.strict import Strict

Scope = str  # "tenant:acme", "key:key_ab12", "model:gpt-mock", "feature:x", "route:y"; "*" = each
_SCOPE = re.compile(r"^(tenant|key|model|feature|route):(\*|[^\s]+)$")


def _check_scope(value: str, kinds: tuple[str, ...]) -> str:
    match = _SCOPE.match(value)
    if match is None or match.group(1) not in kinds:
        raise ValueError(f"scope '{value}' must be one of {', '.join(k + ':NAME' for k in kinds)}")
    return value


class LimitConfig(Strict):
    """Requests and tokens per minute for a key, a tenant or a model (`*`: each one)."""

    scope: Scope
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _valid(self) -> LimitConfig:
        _check_scope(self.scope, ("tenant", "key", "model"))
        if self.rpm is None and self.tpm is None:
            raise ValueError("a limit needs rpm, tpm or both")
        return self


class BudgetConfig(Strict):
    """USD per period for a tenant, key, feature, route or model (`*`: each one)."""

    scope: Scope
    period: Literal["day", "month"]
    usd: float = Field(gt=0)
    on_exceed: str = "block"

    @model_validator(mode="after")
    def _valid(self) -> BudgetConfig:
        _check_scope(self.scope, ("tenant", "key", "feature", "route", "model"))
        if self.on_exceed not in ("block", "alert") and not (
            self.on_exceed.startswith("downgrade:") and len(self.on_exceed) > len("downgrade:")
        ):
            raise ValueError(
                f"on_exceed '{self.on_exceed}' must be block, alert or downgrade:<model>"
            )
        return self

    @property
    def downgrade_to(self) -> str | None:
        return self.on_exceed.partition(":")[2] if self.on_exceed.startswith("downgrade:") else None


class ReservationConfig(Strict):
    """The output tokens a budget reserves before a call (docs/policy.md): the quantile of
    the model's last `window` answers in this process, once it has `min_samples`."""

    output_quantile: float = Field(default=0.95, gt=0, le=1)
    window: int = Field(default=200, ge=1, le=100_000)
    min_samples: int = Field(default=20, ge=1)
    default_output_tokens: int = Field(default=1024, ge=0)  # before min_samples answers

    @model_validator(mode="after")
    def _valid(self) -> ReservationConfig:
        if self.min_samples > self.window:
            raise ValueError(
                f"min_samples ({self.min_samples}) must not exceed window ({self.window})"
            )
        return self
