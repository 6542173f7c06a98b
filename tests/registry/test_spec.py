"""Parsing routes files: strict, and every error names the file, the route and the key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.support import GatewayFactory
from trimtab.bounds import MAX_DEPTH
from trimtab.cli import cli
from trimtab.registry.spec import RoutesError, load_routes, parse_routes

MODELS = {"gpt-mock", "claude-mock"}

SAMPLE = """
routes:
  support-answer:
    owner: support-ml@acme.example      # who is paged, who approves
    risk_tier: 2                        # 0 (internal) .. 3 (regulated, customer-facing)
    version:
      model: gpt-mock
      params: {temperature: 0.2, max_tokens: 400}
      messages:
        - role: system
          content: "You are Acme's support assistant. Policy: {{policy}}"
        - role: user
          content: "{{question}}"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RoutesError) as caught:
        load_routes(text, "routes.yaml", MODELS)
    return caught.value.problems


def test_the_sample_parses() -> None:
    [route] = load_routes(SAMPLE, "routes.yaml", MODELS)
    assert route.name == "support-answer"
    assert route.owner == "support-ml@acme.example"
    assert route.risk_tier == 2
    assert route.tenant is None
    assert route.bundle.model == "gpt-mock"
    assert dict(route.bundle.params) == {"temperature": 0.2, "max_tokens": 400}
    assert [m.role for m in route.bundle.messages] == ["system", "user"]
    assert route.bundle.variables == ("policy", "question")


def test_an_unknown_key_names_the_file_the_route_and_the_key() -> None:
    text = SAMPLE.replace("temperature: 0.2", "temprature: 0.2")
    assert problems(text) == [
        "routes.yaml: routes.support-answer.version.params.temprature: unknown key"
    ]
    text = SAMPLE.replace("    risk_tier: 2", "    risk_tier: 2\n    team: x")
    assert problems(text) == ["routes.yaml: routes.support-answer.team: unknown key"]
    text = SAMPLE.replace(
        '          content: "{{question}}"', "          content: x\n          name: q"
    )
    assert problems(text) == [
        "routes.yaml: routes.support-answer.version.messages[1].name: unknown key"
    ]
    assert problems(SAMPLE + "extra: 1\n") == ["routes.yaml: extra: unknown key"]


def test_a_model_not_configured_on_the_gateway_is_an_error() -> None:
    text = SAMPLE.replace("model: gpt-mock", "model: gpt-9")
    assert problems(text) == [
        "routes.yaml: routes.support-answer.version.model: unknown model 'gpt-9' "
        "(configured on this gateway: claude-mock, gpt-mock)"
    ]
    # without a model list (a file checked on its own), any model name is accepted
    assert load_routes(text, "routes.yaml")[0].bundle.model == "gpt-9"


def test_types_are_strict_and_ranges_checked() -> None:
    text = SAMPLE.replace("risk_tier: 2 ", 'risk_tier: "2"').replace(
        "max_tokens: 400", "max_tokens: 0"
    )
    assert problems(text) == [
        "routes.yaml: routes.support-answer.risk_tier: Input should be a valid integer",
        "routes.yaml: routes.support-answer.version.params.max_tokens: "
        "Input should be greater than or equal to 1",
    ]
    text = SAMPLE.replace("risk_tier: 2 ", "risk_tier: 4")
    assert problems(text) == [
        "routes.yaml: routes.support-answer.risk_tier: Input should be less than or equal to 3"
    ]
    text = SAMPLE.replace("role: user", "role: tool")
    [problem] = problems(text)
    assert problem.startswith("routes.yaml: routes.support-answer.version.messages[1].role: ")
    assert "'system', 'user' or 'assistant'" in problem


def test_required_keys_are_named() -> None:
    text = SAMPLE.replace(
        "    owner: support-ml@acme.example      # who is paged, who approves\n", ""
    )
    assert problems(text) == ["routes.yaml: routes.support-answer.owner: Field required"]


def test_bad_placeholders_and_route_names_are_errors() -> None:
    text = SAMPLE.replace("{{question}}", "{{ the question }}")
    [problem] = problems(text)
    assert problem.startswith(
        "routes.yaml: routes.support-answer.version.messages[1].content: "
        "'{{ the question }}' is not a template variable"
    )
    text = SAMPLE.replace("support-answer:", "support answer:")
    [problem] = problems(text)
    assert problem.startswith("routes.yaml: routes.support answer: invalid route name")


def test_system_messages_come_first() -> None:
    text = SAMPLE.replace("role: system", "role: ROLE").replace("role: user", "role: system")
    text = text.replace("role: ROLE", "role: user")
    assert problems(text) == [
        "routes.yaml: routes.support-answer.version.messages[1].role: system messages must "
        "come before user and assistant messages"
    ]


def test_several_problems_are_reported_together() -> None:
    text = SAMPLE.replace("model: gpt-mock", "model: nope").replace("{{question}}", "{{q r}}")
    assert len(problems(text)) == 2


def test_files_that_are_not_routes_files() -> None:
    assert problems("routes: [")[0].startswith("routes.yaml: invalid YAML:")
    assert problems("- a\n- b\n") == [
        "routes.yaml: the top level must be a mapping with the key 'routes'"
    ]
    assert problems("routes: {}\n") == ["routes.yaml: routes: no routes are defined"]
    assert problems("other: 1\n") == [
        "routes.yaml: routes: Field required",
        "routes.yaml: other: unknown key",
    ]


def test_json_data_parses_like_yaml() -> None:
    data = {
        "routes": {
            "r1": {
                "owner": "a@b",
                "risk_tier": 0,
                "tenant": "acme",
                "version": {"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]},
            }
        }
    }
    [route] = parse_routes(data, "body", MODELS)
    assert route.tenant == "acme"
    assert dict(route.bundle.params) == {}
    assert route.bundle.variables == ()


def test_yaml_aliases_are_refused_before_anything_is_built() -> None:
    # each level repeats the one before ten times: 565 bytes once stored 10^7 leaves
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    text = "bomb:\n" + "\n".join("  " + line for line in levels) + "\n" + SAMPLE
    [problem] = problems(text)
    assert problem.startswith("routes.yaml: invalid YAML: YAML aliases (*a0) are not accepted")
    assert "line 3" in problem


def test_a_routes_file_nested_deeper_than_the_limit_is_refused() -> None:
    # PyYAML composes recursively: 10,000 levels once overflowed the stack (a 500)
    deep = "[" * 10_000 + "]" * 10_000
    text = SAMPLE.replace("{temperature: 0.2, max_tokens: 400}", "{response_format: " + deep + "}")
    [problem] = problems(text)
    assert f"the document nests deeper than {MAX_DEPTH} levels" in problem


def test_routes_data_nested_deeper_than_the_limit_is_refused() -> None:
    deep: object = "x"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    version = {"model": "gpt-mock", "params": {"stop": deep}, "messages": [
        {"role": "user", "content": "hi"}]}  # fmt: skip
    data = {"routes": {"r1": {"owner": "a@b", "risk_tier": 0, "version": version}}}
    with pytest.raises(RoutesError) as caught:
        parse_routes(data, "body", MODELS)
    assert caught.value.problems == [f"body: the routes data nests deeper than {MAX_DEPTH} levels"]


THREE_PROBLEMS = """
routes:
  support-answer:
    owner: support-ml@acme.example
    risk_tier: 2
    version:
      model: gpt-nope
      params: {temprature: 0.2}
      messages:
        - role: user
          content: "{{question"
"""
EXPECTED = [
    "routes.yaml: routes.support-answer.version.params.temprature: unknown key",
    "routes.yaml: routes.support-answer.version.model: unknown model 'gpt-nope' "
    "(configured on this gateway: claude-mock, gpt-mock)",
    "routes.yaml: routes.support-answer.version.messages[0].content: ",
]


def test_a_schema_problem_does_not_hide_the_others() -> None:
    # an unknown parameter used to hide the unknown model and the bad template
    found = problems(THREE_PROBLEMS)
    assert len(found) == 3, found
    for expected, got in zip(EXPECTED, found, strict=True):
        assert got.startswith(expected), (expected, got)


def test_the_api_and_the_cli_name_every_problem(
    gateway: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = gateway(models={"gpt-mock": {"provider": "upstream", "model": "mock-1"}})
    response = httpx.post(
        running.url + "/api/routes/apply",
        json={"yaml": THREE_PROBLEMS, "source": "routes.yaml", "message": "m"},
        timeout=10,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_routes"
    for expected in EXPECTED:
        expected = expected.replace("claude-mock, gpt-mock", "gpt-mock")
        assert expected in error["message"], (expected, error["message"])
    file = tmp_path / "routes.yaml"
    file.write_text(THREE_PROBLEMS)
    env = {"TRIMTAB_URL": running.url, "COLUMNS": "300"}
    result = CliRunner().invoke(cli, ["apply", "-f", str(file), "-m", "m"], env=env)
    assert result.exit_code != 0
    flat = " ".join(result.output.split())
    for expected in EXPECTED:
        expected = expected.replace("claude-mock, gpt-mock", "gpt-mock").replace("routes.yaml", "")
        assert " ".join(expected.split()) in flat, (expected, result.output)
