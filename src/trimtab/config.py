"""Settings: the YAML file parsed strictly into typed models."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from trimtab.bounds import safe_load_yaml, validation_problems
from trimtab.canary.plans import Plan
from trimtab.types import Role

ProviderKind = Literal["openai", "anthropic", "simulator"]


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the file and key in the message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    url: str = "sqlite:///trimtab.db"
    pool_size: int = Field(default=5, ge=1)


class ProviderConfig(_Strict):
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


class Pricing(_Strict):
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """USD cost of a call, or None when the provider reported no usage."""
        if input_tokens is None and output_tokens is None:
            return None
        return (
            (input_tokens or 0) * self.input_per_mtok + (output_tokens or 0) * self.output_per_mtok
        ) / 1_000_000


class DeploymentConfig(_Strict):
    """One upstream serving a model; several make a weighted pool."""

    provider: str
    model: str | None = None
    weight: float = Field(default=1.0, gt=0)


class BreakerConfig(_Strict):
    """Open when, within `window_s`, at least `min_requests` ended and `failure_ratio` failed;
    stay open `cooldown_s`, then let one probe through."""

    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=20, ge=1)
    window_s: float = Field(default=30.0, gt=0)
    cooldown_s: float = Field(default=30.0, gt=0)


class CacheConfig(_Strict):
    ttl_s: float = Field(default=300.0, gt=0)


class ModelConfig(_Strict):
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


class KeyConfig(_Strict):
    key: str = Field(min_length=8)
    tenant: str = "default"
    role: Role = "app"
    owner: str | None = None


class AuthConfig(_Strict):
    """Keys created through the API live in the store; the gateway holds them in memory."""

    refresh_s: float = Field(default=1.0, gt=0)
    stale_ttl_s: float = Field(default=600.0, gt=0)


Scope = str  # "tenant:acme", "key:key_ab12", "model:gpt-mock", "feature:x", "route:y"; "*" = each
_SCOPE = re.compile(r"^(tenant|key|model|feature|route):(\*|[^\s]+)$")


def _check_scope(value: str, kinds: tuple[str, ...]) -> str:
    match = _SCOPE.match(value)
    if match is None or match.group(1) not in kinds:
        raise ValueError(f"scope '{value}' must be one of {', '.join(k + ':NAME' for k in kinds)}")
    return value


class LimitConfig(_Strict):
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


class BudgetConfig(_Strict):
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


class WebhookConfig(_Strict):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    retries: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=5.0, gt=0)


AlertSeverity = Literal["page", "ticket", "info"]
ALERT_SEVERITIES: tuple[AlertSeverity, ...] = ("page", "ticket", "info")


class AlertSinkConfig(_Strict):
    """Where alerts go (docs/alerts.md): a JSON webhook, Slack, PagerDuty or Alertmanager."""

    kind: Literal["webhook", "slack", "pagerduty", "alertmanager"]
    url: str | None = None  # pagerduty: https://events.pagerduty.com/v2/enqueue by default
    headers: dict[str, str] = Field(default_factory=dict)
    routing_key: str | None = None  # pagerduty: the integration key
    severities: list[AlertSeverity] = Field(default_factory=lambda: list(ALERT_SEVERITIES))
    timeout_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> AlertSinkConfig:
        if self.kind == "pagerduty" and not self.routing_key:
            raise ValueError("a pagerduty sink needs routing_key")
        if self.kind != "pagerduty" and not self.url:
            raise ValueError(f"a {self.kind} sink needs url")
        return self


class RotationConfig(_Strict):
    """Who is on call for an owner: people handing over every `every` from `start`, or a
    named external schedule passed through to PagerDuty."""

    people: list[str] = Field(default_factory=list)
    start: AwareDatetime | None = None  # the first hand-over (ISO 8601, with its offset)
    every: Literal["daily", "weekly"] = "weekly"
    schedule: str | None = None  # e.g. a PagerDuty schedule id
    routing_key: str | None = None  # pagerduty: this owner's service, instead of the sink's

    @model_validator(mode="after")
    def _valid(self) -> RotationConfig:
        if not self.people and not self.schedule:
            raise ValueError("a rotation needs people or a schedule")
        if self.people and self.start is None:
            raise ValueError("a rotation of people needs start (its first hand-over)")
        return self


class AlertRoutingConfig(_Strict):
    """Alerts whose labels match every `match` entry (exact value, or `~regex`) go to `sinks`."""

    match: dict[str, str] = Field(default_factory=dict)
    sinks: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _patterns(self) -> AlertRoutingConfig:
        for label, want in self.match.items():
            if want.startswith("~"):
                try:
                    re.compile(want[1:])
                except re.error as exc:
                    raise ValueError(f"match.{label}: bad regular expression: {exc}") from None
        return self


class AlertOutboxConfig(_Strict):
    interval_s: float = Field(default=1.0, gt=0)  # how often the outbox is looked at
    base_backoff_s: float = Field(default=1.0, gt=0)
    max_backoff_s: float = Field(default=300.0, gt=0)
    give_up_after_s: float = Field(default=86_400.0, gt=0)  # a row older than this is dead
    lease_s: float = Field(default=60.0, gt=0)  # a claimed row is another's after this
    probe_interval_s: float = Field(default=5.0, gt=0)  # breakers, spill, key store


class AlertsConfig(_Strict):
    budget_thresholds: list[float] = Field(default_factory=lambda: [0.8, 1.0, 1.1])
    webhooks: list[WebhookConfig] = Field(default_factory=list)  # budget events, as JSON
    # budget crossings at or above this share of the limit page; below it, a ticket
    budget_page_at: float = Field(default=1.0, gt=0)
    sinks: dict[str, AlertSinkConfig] = Field(default_factory=dict)
    rotations: dict[str, RotationConfig] = Field(default_factory=dict)  # owner -> on call
    routing: list[AlertRoutingConfig] = Field(default_factory=list)  # none: every sink
    outbox: AlertOutboxConfig = Field(default_factory=AlertOutboxConfig)
    external_url: str | None = None  # links in alerts point here (the server's base URL)

    @model_validator(mode="after")
    def _known_sinks(self) -> AlertsConfig:
        for i, rule in enumerate(self.routing):
            unknown = sorted(set(rule.sinks) - set(self.sinks))
            if unknown:
                raise ValueError(f"routing[{i}] names unknown sinks: {', '.join(unknown)}")
        return self


class ReservationConfig(_Strict):
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


class RolloutsConfig(_Strict):
    """The canary controller: how often it judges, and the plans a rollout may follow."""

    check_interval_s: float = Field(default=5.0, gt=0)
    # how often each process re-reads routes and rollouts from the store: a change made
    # through another process (apply, rollback, a controller's move) serves within this
    refresh_s: float = Field(default=0.5, gt=0, le=1.0)
    plans: dict[str, Plan] = Field(default_factory=dict)


class SloConfig(_Strict):
    """The SLO evaluator (docs/slos.md): how often the process holding its lease judges
    every SLO; the lease lasts three intervals."""

    evaluate_interval_s: float = Field(default=30.0, gt=0)


class StateConfig(_Strict):
    """Where rate-limit counters, budget reservations, breakers and the cache live."""

    url: str | None = None  # None: in this process; redis://host:port/db: shared
    # While Redis is unreachable each process enforces 1/processes of every rate limit and
    # of what was left of every budget (docs/policy.md): set it to the number of processes.
    processes: int = Field(default=1, ge=1)
    probe_interval_s: float = Field(default=1.0, gt=0)  # how often an outage is re-checked


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)


class MetricsConfig(_Strict):
    """Who may read /metrics: with keys configured an admin key, unless `public` (a scraper
    on a private network)."""

    public: bool = False


class TelemetryConfig(_Strict):
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


class OtelConfig(_Strict):
    """OpenTelemetry export (docs/production.md): each request as an OTel GenAI span over
    OTLP/HTTP; off unless `endpoint` is set."""

    endpoint: str | None = None  # the collector's base URL (http://collector:4318) or .../v1/traces
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an authorization header
    service_name: str = "trimtab"
    content: bool = False  # the messages in and out too (only of records that keep bodies)
    timeout_s: float = Field(default=5.0, gt=0)  # one export attempt, and the flush at stop
    max_queue_size: int = Field(default=2048, ge=1)  # spans waiting; beyond it they are dropped


BodiesMode = Literal["full", "redacted", "hashed", "none"]


class RetentionConfig(_Strict):
    """How long the store keeps what (docs/guardrails.md, Data protection); None: forever."""

    bodies_days: float | None = Field(default=None, gt=0)  # then the body columns are nulled
    rows_days: float | None = Field(default=None, gt=0)  # then the request rows are deleted
    rollups_days: float | None = Field(default=None, gt=0)  # per-minute rollups, kept longer


class TenantStorageConfig(_Strict):
    bodies: BodiesMode | None = None  # None: the gateway's
    retention: RetentionConfig | None = None  # None: the gateway's; a key left out: too


class StorageConfig(_Strict):
    """What the store keeps of request and answer bodies, and for how long."""

    bodies: BodiesMode = "redacted"  # the default for plain model calls and routes
    hash_key: str | None = None  # the HMAC-SHA256 key of `hashed` (e.g. ${TRIMTAB_HASH_KEY})
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    tenants: dict[str, TenantStorageConfig] = Field(default_factory=dict)
    retention_interval_s: float = Field(default=300.0, gt=0)  # how often the job runs
    retention_batch: int = Field(default=1000, ge=1, le=100_000)  # rows per statement

    @model_validator(mode="after")
    def _hash_key(self) -> StorageConfig:
        hashed = ["storage.bodies"] if self.bodies == "hashed" else []
        hashed += [
            f"storage.tenants.{t}.bodies" for t, c in self.tenants.items() if c.bodies == "hashed"
        ]
        if hashed and not self.hash_key:
            raise ValueError(
                f"storage.hash_key: required by {hashed[0]}: hashed (an HMAC key, "
                "e.g. ${TRIMTAB_HASH_KEY}, at least 16 characters)"
            )
        if self.hash_key is not None and len(self.hash_key) < 16:
            raise ValueError("storage.hash_key: must be at least 16 characters")
        return self


PII_ENTITIES = ("email", "phone", "credit_card", "iban", "ssn", "ip", "api_key", "jwt")
GuardrailAction = Literal["redact", "block", "flag"]


def _check_patterns(patterns: list[str], key: str) -> None:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{key}[{i}]: invalid regex '{pattern}': {exc}") from None


class PiiGuardConfig(_Strict):
    action: GuardrailAction = "redact"
    entities: list[str] | None = None  # None: every structured type (PII_ENTITIES)
    regions: list[str] = Field(default_factory=lambda: ["US"])  # national phone formats

    @model_validator(mode="after")
    def _known(self) -> PiiGuardConfig:
        for i, entity in enumerate(self.entities or []):
            if entity not in PII_ENTITIES:
                raise ValueError(
                    f"entities[{i}]: unknown entity '{entity}' (known: {', '.join(PII_ENTITIES)})"
                )
        for i, region in enumerate(self.regions):
            if re.fullmatch(r"[A-Z]{2}", region) is None:
                raise ValueError(
                    f"regions[{i}]: '{region}' is not a region code (two capitals: US, GB, DE)"
                )
        return self


class InjectionGuardConfig(_Strict):
    action: Literal["block", "flag"] = "block"
    threshold: float = Field(default=0.5, gt=0, le=1)  # the score at which a rule fires


class JsonSchemaGuardConfig(_Strict):
    schema_: dict[str, Any] = Field(alias="schema")
    on_fail: Literal["retry_once", "block", "flag"] = "flag"

    @model_validator(mode="after")
    def _valid_schema(self) -> JsonSchemaGuardConfig:
        import jsonschema  # only when a policy has a schema

        try:
            jsonschema.validators.validator_for(self.schema_).check_schema(self.schema_)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise ValueError(f"schema: invalid JSON Schema at {where}: {exc.message}") from None
        return self


class InputGuardrailsConfig(_Strict):
    pii: PiiGuardConfig | None = None
    injection: InjectionGuardConfig | None = None
    max_input_tokens: int | None = Field(default=None, ge=1)
    deny: list[str] = Field(default_factory=list)  # regexes; a match blocks

    @model_validator(mode="after")
    def _patterns(self) -> InputGuardrailsConfig:
        _check_patterns(self.deny, "deny")
        return self


class OutputGuardrailsConfig(_Strict):
    pii: PiiGuardConfig | None = None
    json_schema: JsonSchemaGuardConfig | None = None
    deny: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _patterns(self) -> OutputGuardrailsConfig:
        _check_patterns(self.deny, "deny")
        return self


class SessionGuardrailsConfig(_Strict):
    """Ceilings per session id (docs/guardrails.md): runaway agent loops."""

    max_requests: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_identical_calls: int | None = Field(default=None, ge=1)
    ttl_s: float = Field(default=86_400.0, gt=0)  # a session's counters expire after this


class GuardrailsConfig(_Strict):
    """A guardrail policy (docs/guardrails.md): the gateway's default, or a route version's."""

    mode: Literal["enforce", "shadow"] = "enforce"  # shadow: detect and record, change nothing
    input: InputGuardrailsConfig | None = None
    output: OutputGuardrailsConfig | None = None
    session: SessionGuardrailsConfig | None = None


class EvalsConfig(_Strict):
    # the modules whose functions an applied suite's `python` scorers may run online, in
    # this server (a name covers its submodules): the server runs only code this file names
    python_scorers: list[str] = Field(default_factory=list)


class Config(_Strict):
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
