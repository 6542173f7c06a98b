"""Settings: the YAML file parsed strictly into typed models.

The sections with models of their own live beside this module (`upstreams`, `policy`,
`alerts`, `storage`, `guardrails`); every name stays importable from `trimtab.config`."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from trimtab.bounds import safe_load_yaml, validation_problems
from trimtab.canary.plans import Plan
from trimtab.config.alerts import (
    ALERT_SEVERITIES,
    AlertOutboxConfig,
    AlertRoutingConfig,
    AlertsConfig,
    AlertSeverity,
    AlertSinkConfig,
    RotationConfig,
    WebhookConfig,
)
from trimtab.config.guardrails import (
    PII_ENTITIES,
    GuardrailAction,
    GuardrailsConfig,
    InjectionGuardConfig,
    InputGuardrailsConfig,
    JsonSchemaGuardConfig,
    OutputGuardrailsConfig,
    PiiGuardConfig,
    SessionGuardrailsConfig,
)
from trimtab.config.policy import BudgetConfig, LimitConfig, ReservationConfig, Scope
from trimtab.config.storage import (
    BodiesMode,
    RetentionConfig,
    StorageConfig,
    TenantStorageConfig,
)
from trimtab.config.strict import Strict
from trimtab.config.upstreams import (
    BreakerConfig,
    CacheConfig,
    DeploymentConfig,
    ModelConfig,
    Pricing,
    ProviderConfig,
    ProviderKind,
)
from trimtab.types import Role

__all__ = [
    "ALERT_SEVERITIES",
    "PII_ENTITIES",
    "AlertOutboxConfig",
    "AlertRoutingConfig",
    "AlertSeverity",
    "AlertSinkConfig",
    "AlertsConfig",
    "AuthConfig",
    "BodiesMode",
    "BreakerConfig",
    "BudgetConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "DeploymentConfig",
    "EvalsConfig",
    "GuardrailAction",
    "GuardrailsConfig",
    "InjectionGuardConfig",
    "InputGuardrailsConfig",
    "JsonSchemaGuardConfig",
    "KeyConfig",
    "LimitConfig",
    "MetricsConfig",
    "ModelConfig",
    "OtelConfig",
    "OutputGuardrailsConfig",
    "PiiGuardConfig",
    "Pricing",
    "ProviderConfig",
    "ProviderKind",
    "ReservationConfig",
    "RetentionConfig",
    "RolloutsConfig",
    "RotationConfig",
    "Scope",
    "ServerConfig",
    "SessionGuardrailsConfig",
    "SloConfig",
    "StateConfig",
    "StorageConfig",
    "StoreConfig",
    "TelemetryConfig",
    "TenantStorageConfig",
    "WebhookConfig",
    "default_config",
    "expand_env",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the file and key in the message."""


class StoreConfig(Strict):
    url: str = "sqlite:///trimtab.db"
    pool_size: int = Field(default=5, ge=1)


class KeyConfig(Strict):
    key: str = Field(min_length=8)
    tenant: str = "default"
    role: Role = "app"
    owner: str | None = None


class AuthConfig(Strict):
    """Keys created through the API live in the store; the gateway holds them in memory."""

    refresh_s: float = Field(default=1.0, gt=0)
    stale_ttl_s: float = Field(default=600.0, gt=0)


class RolloutsConfig(Strict):
    """The canary controller: how often it judges, and the plans a rollout may follow."""

    check_interval_s: float = Field(default=5.0, gt=0)
    # how often each process re-reads routes and rollouts from the store: a change made
    # through another process (apply, rollback, a controller's move) serves within this
    refresh_s: float = Field(default=0.5, gt=0, le=1.0)
    plans: dict[str, Plan] = Field(default_factory=dict)


class SloConfig(Strict):
    """The SLO evaluator (docs/slos.md): how often the process holding its lease judges
    every SLO; the lease lasts three intervals."""

    evaluate_interval_s: float = Field(default=30.0, gt=0)


class StateConfig(Strict):
    """Where rate-limit counters, budget reservations, breakers and the cache live."""

    url: str | None = None  # None: in this process; redis://host:port/db: shared
    # While Redis is unreachable each process enforces 1/processes of every rate limit and
    # of what was left of every budget (docs/policy.md): set it to the number of processes.
    processes: int = Field(default=1, ge=1)
    probe_interval_s: float = Field(default=1.0, gt=0)  # how often an outage is re-checked


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)


class MetricsConfig(Strict):
    """Who may read /metrics: with keys configured an admin key, unless `public` (a scraper
    on a private network)."""

    public: bool = False


class TelemetryConfig(Strict):
    queue_size: int = Field(default=20_000, ge=1)
    batch_size: int = Field(default=1_000, ge=1)
    flush_interval_s: float = Field(default=0.2, gt=0)
    spill_path: str = "trimtab-spill.jsonl"
    record_bodies: bool = True
    write_retries: int = Field(default=3, ge=0)
    journal: bool = True  # write-ahead each record to local disk (telemetry/journal.py)
    journal_path: str | None = None  # a directory; None: beside spill_path, NAME.journal
    journal_fsync_ms: float = Field(default=200.0, gt=0)

    def journal_dir(self) -> str:
        if self.journal_path is not None:
            return self.journal_path
        spill = Path(self.spill_path)
        return str(spill.with_name(spill.stem + ".journal"))


class OtelConfig(Strict):
    """OpenTelemetry export (docs/production.md): each request as an OTel GenAI span over
    OTLP/HTTP; off unless `endpoint` is set."""

    endpoint: str | None = None  # the collector's base URL (http://collector:4318) or .../v1/traces
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an authorization header
    service_name: str = "trimtab"
    content: bool = False  # the messages in and out too (only of records that keep bodies)
    timeout_s: float = Field(default=5.0, gt=0)  # one export attempt, and the flush at stop
    max_queue_size: int = Field(default=2048, ge=1)  # spans waiting; beyond it they are dropped


class EvalsConfig(Strict):
    # the modules whose functions an applied suite's `python` scorers may run online, in
    # this server (a name covers its submodules): the server runs only code this file names
    python_scorers: list[str] = Field(default_factory=list)


class Config(Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    otel: OtelConfig = Field(default_factory=OtelConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    keys: list[KeyConfig] | None = None
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: list[LimitConfig] = Field(default_factory=list)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    reservation: ReservationConfig = Field(default_factory=ReservationConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    rollouts: RolloutsConfig = Field(default_factory=RolloutsConfig)
    slo: SloConfig = Field(default_factory=SloConfig)
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    evals: EvalsConfig = Field(default_factory=EvalsConfig)

    @model_validator(mode="after")
    def _models_name_providers(self) -> Config:
        known = ", ".join(sorted(self.providers)) or "none"
        for name, model in self.models.items():
            if model.provider is not None and model.provider not in self.providers:
                raise ValueError(
                    f"models.{name}.provider: unknown provider '{model.provider}' "
                    f"(configured: {known})"
                )
            for i, dep in enumerate(model.deployments or []):
                if dep.provider not in self.providers:
                    raise ValueError(
                        f"models.{name}.deployments[{i}].provider: unknown provider "
                        f"'{dep.provider}' (configured: {known})"
                    )
            for fallback in model.fallbacks:
                if fallback not in self.models or fallback == name:
                    raise ValueError(
                        f"models.{name}.fallbacks: '{fallback}' is not another configured model"
                    )
        for i, budget in enumerate(self.budgets):
            target = budget.downgrade_to
            if target is not None and target not in self.models:
                raise ValueError(f"budgets[{i}].on_exceed: unknown model '{target}'")
        if self.keys is not None:
            seen: set[str] = set()
            for i, key in enumerate(self.keys):
                if key.key in seen:
                    raise ValueError(f"keys[{i}].key: the same key is listed twice")
                seen.add(key.key)
        return self

    def upstream_model(self, name: str) -> str:
        """The provider's own name for a configured model (its first deployment's)."""
        return self.models[name].pool(name)[0].model or name


def default_config() -> Config:
    """The embedded default: SQLite next to the working directory and a simulator."""
    return Config(
        providers={"sim": ProviderConfig(kind="simulator", latency_ms=20, chunk_delay_ms=5)},
        models={
            "sim-1": ModelConfig(
                provider="sim", pricing=Pricing(input_per_mtok=0.5, output_per_mtok=1.5)
            )
        },
    )


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, environ: dict[str, str] | None = None, source: str = "") -> str:
    """Replace ${VAR} and ${VAR:-default}; an unset variable without default becomes ''."""
    env = os.environ if environ is None else environ

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        print(f"trimtab: warning: {source}: ${{{name}}} is not set; using ''", file=sys.stderr)
        return ""

    return _ENV.sub(sub, text)


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate already-loaded YAML data; errors name the source and the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(validation_problems(exc, source))) from None


def load_config(path: str | Path) -> Config:
    """Read a YAML config file, expanding environment variables."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        data = safe_load_yaml(expand_env(text, source=str(p)))  # no aliases (bounds.py)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    return parse_config(data, str(p))
