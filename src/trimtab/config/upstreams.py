"""`providers:` and `models:`: the upstreams, the models they serve, their prices, pools,
breakers and caches."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trimtab.config.strict import Strict

ProviderKind = Literal["openai", "anthropic", "simulator"]


class ProviderConfig(Strict):
    kind: ProviderKind
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    max_connections: int = Field(default=512, ge=1)
    anthropic_version: str = "2023-06-01"
    # simulator only: deterministic replies with configurable latency and failures
    latency_ms: float = Field(default=0.0, ge=0)
    chunk_delay_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0

    @model_validator(mode="after")
    def _needs_base_url(self) -> ProviderConfig:
        if self.kind != "simulator" and not self.base_url:
            raise ValueError(f"a provider of kind '{self.kind}' needs base_url")
        return self


class Pricing(Strict):
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """USD cost of a call, or None when the provider reported no usage."""
        if input_tokens is None and output_tokens is None:
            return None
        return (
            (input_tokens or 0) * self.input_per_mtok + (output_tokens or 0) * self.output_per_mtok
        ) / 1_000_000


class DeploymentConfig(Strict):
    """One upstream serving a model; several make a weighted pool."""

    provider: str
    model: str | None = None
    weight: float = Field(default=1.0, gt=0)


class BreakerConfig(Strict):
    """Open when, within `window_s`, at least `min_requests` ended and `failure_ratio` failed;
    stay open `cooldown_s`, then let one probe through."""

    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=20, ge=1)
    window_s: float = Field(default=30.0, gt=0)
    cooldown_s: float = Field(default=30.0, gt=0)


class CacheConfig(Strict):
    ttl_s: float = Field(default=300.0, gt=0)


class ModelConfig(Strict):
    provider: str | None = None
    model: str | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    timeout_s: float = Field(default=600.0, gt=0)
    ttft_timeout_s: float | None = Field(default=None, gt=0)
    stream_idle_timeout_s: float | None = Field(default=None, gt=0)
    retries: int = Field(default=0, ge=0, le=10)
    fallbacks: list[str] = Field(default_factory=list)
    deployments: list[DeploymentConfig] | None = None
    breaker: BreakerConfig | None = None
    cache: CacheConfig | None = None

    @model_validator(mode="after")
    def _has_an_upstream(self) -> ModelConfig:
        if self.provider is None and not self.deployments:
            raise ValueError("a model needs 'provider' or 'deployments'")
        return self

    def pool(self, name: str) -> list[DeploymentConfig]:
        """The deployments serving this model (the single provider when none are listed)."""
        if self.deployments:
            return list(self.deployments)
        return [DeploymentConfig(provider=self.provider or "", model=self.model or name)]
