"""Settings: the YAML file parsed strictly into typed models."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Role = Literal["app", "viewer", "operator", "admin"]
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


class ModelConfig(_Strict):
    provider: str
    model: str | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    timeout_s: float = Field(default=600.0, gt=0)


class KeyConfig(_Strict):
    key: str = Field(min_length=8)
    tenant: str = "default"
    role: Role = "app"
    owner: str | None = None


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)


class TelemetryConfig(_Strict):
    queue_size: int = Field(default=20_000, ge=1)
    batch_size: int = Field(default=1_000, ge=1)
    flush_interval_s: float = Field(default=0.2, gt=0)
    spill_path: str = "trimtab-spill.jsonl"
    record_bodies: bool = True
    write_retries: int = Field(default=3, ge=0)


class Config(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    keys: list[KeyConfig] | None = None

    @model_validator(mode="after")
    def _models_name_providers(self) -> Config:
        for name, model in self.models.items():
            if model.provider not in self.providers:
                known = ", ".join(sorted(self.providers)) or "none"
                raise ValueError(
                    f"models.{name}.provider: unknown provider '{model.provider}' "
                    f"(configured: {known})"
                )
        if self.keys is not None:
            seen: set[str] = set()
            for i, key in enumerate(self.keys):
                if key.key in seen:
                    raise ValueError(f"keys[{i}].key: the same key is listed twice")
                seen.add(key.key)
        return self

    def upstream_model(self, name: str) -> str:
        """The provider's own name for a configured model."""
        return self.models[name].model or name


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


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate already-loaded YAML data; errors name the source and the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = _location(tuple(err["loc"]))
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            msg = msg.removeprefix("Value error, ")
            lines.append(f"{source}: {where}: {msg}" if where else f"{source}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | Path) -> Config:
    """Read a YAML config file, expanding environment variables."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(expand_env(text, source=str(p)))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    return parse_config(data, str(p))
