"""The soak's traffic: the kinds of request it mixes, the answers each may get, and the
trimtab configuration whose models cover the failure paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from soak_bench.settings import (
    ADMIN_KEY,
    APP_KEY,
    BAD_KEY,
    CACHE_PROMPTS,
    HOST,
    LIMITED_KEY,
    LIMITED_RPM,
)

Wire = Literal["openai", "anthropic"]


OK = frozenset({"200 ok", "200 stream ok"})


@dataclass(frozen=True)
class Kind:
    """One class of traffic: which model, through which endpoint, what answers are allowed."""

    name: str
    share: float  # of all requests
    model: str
    what: str  # for the report
    wire: Wire = "openai"
    stream_share: float = 0.5
    key: str = APP_KEY
    body: Literal["ok", "bad"] = "ok"
    cached: bool = False
    expect: frozenset[str] = OK


KINDS: tuple[Kind, ...] = (
    Kind("healthy", 0.33, "ok", "healthy OpenAI-wire upstream"),
    Kind("claude", 0.05, "claude-ok", "healthy Anthropic upstream, OpenAI client (translated)"),
    Kind("messages", 0.05, "ok", "/v1/messages on the OpenAI upstream (translated)", "anthropic"),
    Kind("pool", 0.12, "pool", "pool: fail-500 (w1) + healthy (w3), breaker, retries 1"),
    Kind("retry503", 0.06, "retry503", "fail-503, retries 2, fallback to ok"),
    Kind("flaky", 0.06, "flaky", "flaky-3 (reset every 1 s), retries 2, fallback to ok"),
    Kind("hang", 0.02, "hang", "hang, timeout_s 1, ttft_timeout_s 0.5, fallback to ok"),
    Kind("slowfirst", 0.02, "slowfirst", "slow-first-3000, timeout_s 1, ttft 0.5, fallback"),
    Kind(
        "cut",
        0.05,
        "cut",
        "cut-stream (non-streamed: reset), no fallback",
        stream_share=0.8,
        expect=frozenset(
            {"502 upstream_connection_lost", "200 stream error upstream_connection_lost"}
        ),
    ),
    Kind("cached", 0.12, "cached", f"cache ttl 30 s, {CACHE_PROMPTS} prompts", cached=True),
    Kind(
        "limited",
        0.07,
        "ok",
        f"tenant 'limited' with rpm {LIMITED_RPM} (sent at ~840 rpm)",
        key=LIMITED_KEY,
        expect=OK | {"429 rate_limited"},
    ),
    Kind(
        "unknown",
        0.02,
        "no-such-model",
        "a model not configured",
        stream_share=0.0,
        expect=frozenset({"404 model_not_found"}),
    ),
    Kind(
        "badbody",
        0.02,
        "ok",
        "'messages' is not a list",
        stream_share=0.0,
        body="bad",
        expect=frozenset({"400 invalid_request"}),
    ),
    Kind(
        "badkey",
        0.01,
        "ok",
        "an unknown API key",
        stream_share=0.0,
        key=BAD_KEY,
        expect=frozenset({"401 invalid_api_key"}),
    ),
)


STREAM_ERROR_STATUS = {
    "upstream_connection_lost": 502,
    "upstream_error": 502,
    "upstream_invalid_response": 502,
    "upstream_unreachable": 502,
    "upstream_timeout": 504,
    "upstream_unavailable": 503,
}


def trimtab_config(tmp: Path, port: int, mock_port: int) -> dict[str, Any]:
    """The configuration under test."""
    price = {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
    short = {"timeout_s": 1, "ttft_timeout_s": 0.5, "fallbacks": ["ok"], "pricing": price}
    return {
        "store": {"url": f"sqlite:///{tmp / 'soak.db'}"},
        "server": {"host": HOST, "port": port},
        "telemetry": {"spill_path": str(tmp / "spill.jsonl"), "record_bodies": True},
        "state": {"url": None},
        "providers": {
            "mock": {
                "kind": "openai",
                "base_url": f"http://{HOST}:{mock_port}/v1",
                "api_key": "sk-mock",
            },
            "mock-anthropic": {
                "kind": "anthropic",
                "base_url": f"http://{HOST}:{mock_port}",
                "api_key": "sk-ant-mock",
            },
        },
        "models": {
            "ok": {"provider": "mock", "model": "mock-gpt", "pricing": price},
            "claude-ok": {
                "provider": "mock-anthropic",
                "model": "mock-claude",
                "pricing": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
            },
            "pool": {
                "deployments": [
                    {"provider": "mock", "model": "fail-500", "weight": 1},
                    {"provider": "mock", "model": "mock-gpt-pool", "weight": 3},
                ],
                "retries": 1,
                "breaker": {
                    "failure_ratio": 0.5,
                    "min_requests": 10,
                    "window_s": 10,
                    "cooldown_s": 5,
                },
                "pricing": price,
            },
            "retry503": {
                "provider": "mock",
                "model": "fail-503",
                "retries": 2,
                "fallbacks": ["ok"],
                "pricing": price,
            },
            "flaky": {
                "provider": "mock",
                "model": "flaky-3",
                "retries": 2,
                "fallbacks": ["ok"],
                "pricing": price,
            },
            "hang": {"provider": "mock", "model": "hang", **short},
            "slowfirst": {"provider": "mock", "model": "slow-first-3000", **short},
            "cut": {"provider": "mock", "model": "cut-stream", "pricing": price},
            "cached": {
                "provider": "mock",
                "model": "mock-gpt-cached",
                "cache": {"ttl_s": 30},
                "pricing": price,
            },
        },
        "keys": [
            {"key": ADMIN_KEY, "tenant": "ops", "role": "admin", "owner": "soak"},
            {"key": APP_KEY, "tenant": "soak", "role": "app", "owner": "soak-client"},
            {"key": LIMITED_KEY, "tenant": "limited", "role": "app", "owner": "soak-client"},
        ],
        "limits": [{"scope": "tenant:limited", "rpm": LIMITED_RPM}],
        # never reached: every request of tenant soak reserves and settles against it
        "budgets": [{"scope": "tenant:soak", "period": "day", "usd": 10000, "on_exceed": "block"}],
    }


class _Written(yaml.SafeDumper):
    """Every value written out where it is used: trimtab refuses YAML aliases in its
    configuration (bounds.safe_load_yaml), and the models share one pricing mapping."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def config_yaml(config: dict[str, Any]) -> str:
    """The configuration as the YAML file trimtab reads."""
    return yaml.dump(config, Dumper=_Written, sort_keys=False)
