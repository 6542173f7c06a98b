"""The models a client may name, each bound to its provider adapter."""

from __future__ import annotations

from dataclasses import dataclass

from trimtab.config import Config, ModelConfig
from trimtab.errors import GatewayError
from trimtab.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    config: ModelConfig
    provider: Provider
    upstream_model: str


class Catalog:
    """Resolves a model name in memory; nothing on this path touches the store."""

    def __init__(self, config: Config, providers: dict[str, Provider]) -> None:
        self._targets = {
            name: Target(name, m, providers[m.provider], config.upstream_model(name))
            for name, m in config.models.items()
        }

    def names(self) -> list[str]:
        return sorted(self._targets)

    def targets(self) -> list[Target]:
        return [self._targets[n] for n in self.names()]

    def resolve(self, name: str) -> Target:
        target = self._targets.get(name)
        if target is None:
            known = ", ".join(self.names()) or "none"
            raise GatewayError(
                404,
                "model_not_found",
                f"model '{name}' is not configured on this gateway (available: {known})",
                param="model",
            )
        return target
