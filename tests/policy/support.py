"""The policy tests' shared pieces: prices and a config of priced models, the types of the
state and policy factories (the fixtures are in tests/conftest.py, the alert tests use
them too), and the models and messages of the end-to-end budget tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.support import (
    base_config,
)
from trimtab.config import Config, Pricing, parse_config
from trimtab.policy.service import Policy
from trimtab.state.base import SharedState
from trimtab.testing.mock_upstream import MockUpstream

MSGS = [{"role": "user", "content": "how much"}]


# ~$0.01 per token: a handful of requests spends a dollar
PRICEY = {"input_per_mtok": 10_000.0, "output_per_mtok": 10_000.0}


def models(upstream: MockUpstream, tmp_path: Path) -> dict[str, Any]:
    out: dict[str, Any] = base_config(upstream.url, "sqlite://", tmp_path / "x")["models"]
    out["pricey"] = {"provider": "upstream", "model": "mock-1", "pricing": PRICEY}
    return out


PRICES = {
    "gpt-big": Pricing(input_per_mtok=10.0, output_per_mtok=30.0),
    "gpt-small": Pricing(input_per_mtok=1.0, output_per_mtok=2.0),
    "gpt-tiny": Pricing(input_per_mtok=0.1, output_per_mtok=0.2),
}


def pricing(model: str) -> Pricing:
    return PRICES[model]


def config(**extra: Any) -> Config:
    data: dict[str, Any] = {
        "providers": {"sim": {"kind": "simulator"}},
        "models": {
            name: {"provider": "sim", "pricing": p.model_dump()} for name, p in PRICES.items()
        },
        **extra,
    }
    return parse_config(data, "policy-test")


StateFactory = Callable[[], SharedState]


PolicyFactory = Callable[..., Awaitable[Policy]]
