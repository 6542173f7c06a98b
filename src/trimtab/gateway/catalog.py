"""The models a client may name, each with its pool of deployments and its fallbacks."""

from __future__ import annotations

from dataclasses import dataclass

from trimtab.config import Config, ModelConfig
from trimtab.errors import GatewayError
from trimtab.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream (a provider and its model name) that can serve a configured model."""

    provider: Provider
    upstream_model: str
    weight: float

    @property
    def key(self) -> str:
        """Breakers are per deployment: two model names on one upstream share one."""
        return f"{self.provider.name}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    config: ModelConfig
    deployments: tuple[Deployment, ...]

    @property
    def primary(self) -> Deployment:
        return self.deployments[0]


class Catalog:
    """Resolves a model name in memory; nothing on this path touches the store."""

    def __init__(self, config: Config, providers: dict[str, Provider]) -> None:
        self._targets: dict[str, Target] = {}
        for name, model in config.models.items():
            pool = tuple(
                Deployment(providers[d.provider], d.model or name, d.weight)
                for d in model.pool(name)
            )
            self._targets[name] = Target(name, model, pool)
        self._switched: frozenset[str] = frozenset()  # gateway/switches.py installs them

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

    def install_switches(self, models: frozenset[str]) -> None:
        """The models switched to their fallbacks (gateway/switches.py)."""
        self._switched = models

    def plan(self, target: Target) -> list[Target]:
        """The model and then its fallbacks, in order; only the fallbacks while the model
        is switched to them (a model without fallbacks is never switched)."""
        fallbacks = [self._targets[f] for f in target.config.fallbacks]
        if fallbacks and target.name in self._switched:
            return fallbacks
        return [target, *fallbacks]
