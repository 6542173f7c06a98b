"""The YAML configuration: the README's sample verbatim, strict keys, env expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from trimtab.config import ConfigError, default_config, expand_env, load_config, parse_config
from trimtab.registry.spec import load_routes

SAMPLE = """\
store:
  url: sqlite:///trimtab.db          # or postgresql://user@host/db
providers:
  upstream:
    kind: openai                     # any OpenAI-compatible API (OpenAI, vLLM, Ollama, ...)
    base_url: http://127.0.0.1:18080/v1
    api_key: ${UPSTREAM_API_KEY}     # environment variables are expanded
  claude:
    kind: anthropic
    base_url: http://127.0.0.1:18080
    api_key: sk-ant-test
  sim:
    kind: simulator                  # deterministic, configurable latency and error rate
models:
  gpt-mock:
    provider: upstream
    model: mock-1                    # the upstream's own model name
    pricing: {input_per_mtok: 0.15, output_per_mtok: 0.60}
  claude-mock:
    provider: claude
    model: claude-x
    pricing: {input_per_mtok: 3.0, output_per_mtok: 15.0}
keys:                                # optional; when present, requests need one
  - key: tt-demo-key
    tenant: acme
    role: admin                      # app | viewer | operator | admin
"""


def test_readme_sample_loads_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_API_KEY", "sk-from-env")
    path = tmp_path / "trimtab.yaml"
    path.write_text(SAMPLE)
    config = load_config(path)
    assert config.providers["upstream"].api_key == "sk-from-env"
    assert config.upstream_model("gpt-mock") == "mock-1"
    assert config.models["claude-mock"].pricing.output_per_mtok == 15.0
    assert config.keys is not None and config.keys[0].role == "admin"


def test_the_repo_example_is_the_readme_sample() -> None:
    example = Path(__file__).parents[2] / "examples" / "trimtab.yaml"
    assert example.read_text() == SAMPLE


def test_unset_variable_becomes_empty_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert expand_env("key: ${NOPE_NOT_SET}", {}, "f.yaml") == "key: "
    assert "NOPE_NOT_SET" in capsys.readouterr().err
    assert expand_env("${A:-fallback} ${B}", {"B": "b"}) == "fallback b"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"modles": {}}, "f.yaml: modles: unknown key"),
        (
            {"models": {"m": {"provider": "nope"}}},
            "models.m.provider: unknown provider 'nope'",
        ),
        (
            {"providers": {"p": {"kind": "openai"}}},
            "providers.p: a provider of kind 'openai' needs base_url",
        ),
        (
            {"providers": {"p": {"kind": "simulator", "latncy_ms": 3}}},
            "providers.p.latncy_ms: unknown key",
        ),
        ({"keys": [{"key": "tt-key-000001", "role": "root"}]}, "keys[0].role"),
        (
            {"keys": [{"key": "tt-key-000001"}, {"key": "tt-key-000001"}]},
            "keys[1].key: the same key is listed twice",
        ),
        ([1, 2], "the top level must be a mapping"),
    ],
)
def test_errors_name_file_and_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "f.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("f.yaml")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_default_config_needs_nothing() -> None:
    config = default_config()
    assert config.store.url.startswith("sqlite:///")
    assert config.providers["sim"].kind == "simulator"
    assert config.keys is None
    assert "sim-1" in config.models


def test_the_release_guides_files_are_valid() -> None:
    """docs/releasing.md runs examples/releasing/: its config, routes and plan must load."""
    folder = Path(__file__).parents[2] / "examples" / "releasing"
    config = load_config(folder / "trimtab.yaml")
    assert [s.percent for s in config.rollouts.plans["quick"].stages] == [10, 50, 100]
    [route] = load_routes((folder / "routes.yaml").read_text(), "routes.yaml", config.models)
    assert (route.name, route.risk_tier, route.bundle.model) == ("support-answer", 2, "assistant")
    assert "assistant-next" in config.models  # the guide's bad change
