"""Build the provider adapters a configuration names."""

from __future__ import annotations

from trimtab.config import Config, ProviderConfig
from trimtab.providers.anthropic import AnthropicProvider
from trimtab.providers.base import Provider
from trimtab.providers.openai import OpenAIProvider
from trimtab.providers.simulator import SimulatorProvider


def build_provider(name: str, config: ProviderConfig) -> Provider:
    """One adapter for one configured provider."""
    if config.kind == "openai":
        return OpenAIProvider(name, config)
    if config.kind == "anthropic":
        return AnthropicProvider(name, config)
    return SimulatorProvider(name, config)


def build_providers(config: Config) -> dict[str, Provider]:
    return {name: build_provider(name, cfg) for name, cfg in config.providers.items()}
