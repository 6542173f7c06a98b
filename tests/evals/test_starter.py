"""The starter safety set the package ships, its suite template, and `trimtab eval init
safety` against a real server with the mock provider behind it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import yaml

from tests.cli import support as cli
from tests.support import OPERATOR_KEY, ROUTE_KEYS, ROUTES, GatewayFactory
from trimtab.client import Client
from trimtab.evals.datasets import parse
from trimtab.evals.scorers import refuses
from trimtab.evals.starter import HERE, SAFETY_DATASET, safety_items, safety_suite
from trimtab.evals.suites import parse_suites


def test_the_starter_set_parses_and_covers_its_four_kinds() -> None:
    items = parse(safety_items(), "jsonl", "safety.jsonl")
    assert 40 <= len(items) <= 60
    kinds = Counter(item.metadata["category"] for item in items)
    assert set(kinds) == {
        "prompt-injection", "others-pii", "jailbreak-roleplay", "harmful-instructions"
    }  # fmt: skip
    assert min(kinds.values()) >= 10
    assert all(item.expected == "refuse" and "safety" in item.tags for item in items)
    assert all(item.messages and item.messages[-1]["role"] == "user" for item in items)
    assert len({item.id for item in items}) == len(items)


def test_the_template_is_a_safety_suite_with_the_refusal_scorer() -> None:
    (suite,) = parse_suites(yaml.safe_load(safety_suite("support-answer")), "safety.yaml")
    assert (suite.name, suite.route, suite.dataset, suite.tags) == (
        "safety", "support-answer", SAFETY_DATASET, ("safety",)
    )  # fmt: skip
    assert [s.kind for s in suite.scorers] == ["refusal"]
    assert refuses("I'm sorry, but I can't help with that.")


def test_the_files_are_package_data() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"evals/starter/*.jsonl"' in pyproject and '"evals/starter/*.yaml"' in pyproject
    assert {p.name for p in HERE.iterdir()} >= {"safety.jsonl", "safety.yaml"}


CHAT_ROUTE = """
routes:
  chat:
    owner: ml@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - {role: system, content: "You are Acme's assistant."}
"""


def test_eval_init_safety_then_apply_and_run(
    gateway: GatewayFactory, sqlite_url: str, tmp_path: Path
) -> None:
    running = gateway(store=sqlite_url, keys=ROUTE_KEYS)
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(ROUTES + CHAT_ROUTE.removeprefix("\nroutes:\n"), "v1")
    out = tmp_path / "safety.yaml"
    args = ("eval", "init", "safety", "--route", "chat", "-o", str(out))
    code, said = cli.trimtab(running, *args, api_key=OPERATOR_KEY)
    assert code == 0, said
    assert f"dataset {SAFETY_DATASET} v1: pushed (48 items)" in said
    code, said = cli.trimtab(running, *args, api_key=OPERATOR_KEY)
    assert code == 1 and "exists: pass --force" in said
    code, said = cli.trimtab(running, *args, "--force", api_key=OPERATOR_KEY)
    assert code == 0 and "already there" in said

    code, said = cli.trimtab(running, "apply", "-f", str(out), "-m", "safety", api_key=OPERATOR_KEY)
    assert code == 0, said
    code, said = cli.trimtab(running, "eval", "run", "safety", "--json", api_key=OPERATOR_KEY)
    assert code == 0, said
    run = orjson.loads(said)
    assert (run["items"], run["status"], run["errors"]) == (48, "complete", 0)
    # the mock answers everything: no refusal, and the set says so
    (refuses,) = run["summary"]["scorers"]
    assert (refuses["scorer"], refuses["scored"], refuses["pass_rate"]) == ("refuses", 48, 0.0)


def test_a_templated_route_fails_each_item_by_name(
    gateway: GatewayFactory, sqlite_url: str, tmp_path: Path
) -> None:
    """The starter items are messages; a route whose template needs variables cannot
    take them: each item is an error naming the variable, counted, and the run ends."""
    running = gateway(store=sqlite_url, keys=ROUTE_KEYS)
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(ROUTES, "v1")
    out = tmp_path / "safety.yaml"
    code, said = cli.trimtab(
        running, "eval", "init", "safety", "--route", "support-answer", "-o", str(out),
        api_key=OPERATOR_KEY,
    )  # fmt: skip
    assert code == 0, said
    assert cli.trimtab(running, "apply", "-f", str(out), "-m", "s", api_key=OPERATOR_KEY)[0] == 0
    code, said = cli.trimtab(running, "eval", "run", "safety", "--json", api_key=OPERATOR_KEY)
    assert code == 0, said
    run = orjson.loads(said)
    assert (run["status"], run["errors"]) == ("complete", 48)
    with Client(running.url, OPERATOR_KEY) as c:
        first = c.eval_results(run["id"])[0]
    assert first["error"] is not None and "question" in first["error"]
