"""Build the provider adapters a configuration names."""

from __future__ import annotations

from collections.abc import Iterable

from trimtab.config import Config, ProviderConfig
from trimtab.providers.anthropic import AnthropicProvider
from trimtab.providers.base import Provider
from trimtab.providers.openai import OpenAIProvider
from trimtab.providers.secrets import provider_secrets
from trimtab.providers.simulator import SimulatorProvider


def build_provider(
    name: str, config: ProviderConfig, known_secrets: Iterable[str] = ()
) -> Provider:
    """One adapter for one configured provider; `known_secrets` are scrubbed from what it
    relays besides its own credentials."""
    if config.kind == "openai":
        return OpenAIProvider(name, config, known_secrets)
    if config.kind == "anthropic":
        return AnthropicProvider(name, config, known_secrets)
    return SimulatorProvider(name, config)


def build_providers(config: Config) -> dict[str, Provider]:
    """Every provider, each scrubbing every configured provider's credentials: an
    upstream's text never shows another upstream's key either."""
    every = [s for cfg in config.providers.values() for s in provider_secrets(cfg, {})]
    return {name: build_provider(name, cfg, every) for name, cfg in config.providers.items()}
