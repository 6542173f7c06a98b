"""`trimtab apply` of `evals:` sections, one file or several, all or nothing; `eval run
SUITE` finds the applied suite without `--file`."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, func, select

from tests.cli import support
from tests.cli.support import write
from tests.evals.support import SUITE_FILE, golden
from tests.support import OPERATOR_KEY, ROUTES, V2, VIEWER_KEY, Running
from trimtab.client import Client
from trimtab.store.tables import eval_suites, routes


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key)


def count(running: Running, table: object) -> int:
    engine = create_engine(running.config.store.url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_one_file_with_routes_and_evals_then_run_the_applied_suite(
    running: Running, tmp_path: Path
) -> None:
    with Client(running.url, OPERATOR_KEY) as c:
        c.push_dataset("golden", golden(4), "golden set")
    only_route_suite = SUITE_FILE.split("  slow-golden:")[0]
    file = write(tmp_path, ROUTES + only_route_suite, "all.yaml")
    code, out = trimtab(running, "apply", "-f", file, "-m", "launch")
    assert code == 0, out
    assert "support-answer: created v1" in out
    assert "support-golden (eval suite): created" in out
    code, out = trimtab(running, "apply", "-f", file, "-m", "again")
    assert code == 0, out
    assert "support-golden (eval suite): unchanged" in out

    with Client(running.url, VIEWER_KEY) as c:
        (suite,) = c.eval_suites(route="support-answer")
        assert suite["definition"]["tags"] == ["golden"]
        assert c.eval_suite("support-golden")["digest"] == suite["digest"]

    code, out = trimtab(running, "eval", "run", "support-golden", "--json")  # no --file
    assert code == 0, out
    run = orjson.loads(out)
    assert run["status"] == "complete" and run["items"] == 4
    assert run["definition"]["tags"] == ["golden"]

    code, out = trimtab(running, "eval", "run", "nope", "--json")
    assert code == 1
    assert "no eval suite named 'nope'" in out


def test_several_files_are_checked_together_and_a_problem_applies_nothing(
    running: Running, tmp_path: Path
) -> None:
    routes_file = write(tmp_path, ROUTES, "routes.yaml")
    bad = SUITE_FILE.replace("kind: contains,", "kind: contains, colour: red,")
    evals_file = write(tmp_path, bad, "evals.yaml")
    code, out = trimtab(running, "apply", "-f", routes_file, "-f", evals_file, "-m", "launch")
    assert code == 1
    assert "nothing was applied" in out
    assert f"{evals_file}: evals.support-golden.scorers[0].contains.colour: unknown key" in out
    assert count(running, routes) == 0 and count(running, eval_suites) == 0

    # a suite naming a route neither file nor the server has: nothing applied either
    unknown = SUITE_FILE.replace("route: support-answer", "route: nowhere")
    evals_file = write(tmp_path, unknown, "evals.yaml")
    code, out = trimtab(running, "apply", "-f", routes_file, "-f", evals_file, "-m", "launch")
    assert code == 1
    assert f"{evals_file}: evals.support-golden.route: unknown route 'nowhere'" in out
    assert count(running, routes) == 0

    # the same suite in two files
    twice = write(tmp_path, SUITE_FILE, "again.yaml")
    evals_file = write(tmp_path, SUITE_FILE, "evals.yaml")
    code, out = trimtab(
        running, "apply", "-f", routes_file, "-f", evals_file, "-f", twice, "-m", "launch"
    )
    assert code == 1
    assert f"{twice}: evals.support-golden: also defined in {evals_file}" in out

    code, out = trimtab(running, "apply", "-f", routes_file, "-f", evals_file, "-m", "launch")
    assert code == 0, out
    assert count(running, routes) == 1 and count(running, eval_suites) == 2


def test_the_server_refuses_a_suite_of_an_unknown_route(running: Running, tmp_path: Path) -> None:
    file = write(tmp_path, SUITE_FILE.replace("route: support-answer", "route: nowhere"), "e.yaml")
    code, out = trimtab(running, "apply", "-f", file, "-m", "launch")
    assert code == 1
    assert f"{file}: 1 problem(s), no suite was changed" in out
    assert f"{file}: evals.support-golden.route: unknown route 'nowhere'" in out
    code, out = trimtab(running, "apply", "-f", file, "-m", "launch", api_key=VIEWER_KEY)
    assert code == 1
    assert count(running, eval_suites) == 0


GATED = """
evals:
  support-golden:
    route: support-answer
    dataset: golden
    tags: [golden]
    scorers: [{name: echoed, kind: contains, threshold: 1}]
    gate: {max_drop: {echoed: 0.05}}
  support-safety:
    route: support-answer
    dataset: golden
    tags: [safety]
    scorers: [{name: no_secrets, kind: not_contains, values: [password]}]
"""


def test_eval_run_gate_writes_the_attestation_a_tier_2_gate_accepts(
    running: Running, tmp_path: Path
) -> None:
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(ROUTES, "v1")
        c.apply(V2, "friendlier")
        c.push_dataset("golden", golden(12), "golden set")
        # a hand-typed eval on the tier-2 route is kept, labelled manual, and does not count
        c.attest("support-answer", 2, kind="eval", result="pass", note="trust me")
    file = write(tmp_path, GATED, "evals.yaml")
    code, out = trimtab(running, "apply", "-f", file, "-m", "gate suites")
    assert code == 0, out
    refused = start(running)
    assert refused.status_code == 409 and "a passing eval attestation" in refused.text

    code, out = trimtab(
        running, "eval", "run", "support-golden", "--version", "2", "--baseline", "1", "--gate"
    )
    assert code == 0, out
    assert "attested support-answer v2: eval pass (run run_" in out
    assert "suite support-golden, golden v1)" in out
    assert "a passing eval attestation" in start(running).text  # safety not yet run

    code, out = trimtab(
        running, "eval", "run", "support-safety", "--version", "2", "--baseline", "1", "--gate",
        "--json",
    )  # fmt: skip
    assert code == 0, out
    whole = orjson.loads(out)
    attestation = whole["attestation"]
    assert attestation["run_id"] == whole["run"]["id"]
    assert attestation["baseline_run_id"] == whole["baseline"]["id"]
    assert (attestation["result"], attestation["tags"], attestation["manual"]) == (
        "pass",
        ["safety"],
        False,
    )
    assert attestation["digest"] == whole["run"]["target_digest"]
    still = start(running)  # the eval is there; an approval by someone else is not
    assert still.status_code == 409 and "eval" not in still.json()["error"]["message"]
    assert "approval" in still.text

    with Client(running.url, VIEWER_KEY) as c:
        details = [e["detail"] or {} for e in c.timeline("support-answer")]
    attested = [d for d in details if d.get("kind") == "eval"]
    assert [d["manual"] for d in attested] == [True, False, False]
    assert {d.get("suite") for d in attested[1:]} == {"support-golden", "support-safety"}


def start(running: Running) -> httpx.Response:
    return httpx.post(
        running.url + "/api/routes/support-answer/rollouts",
        json={"to": "v2", "reason": "go"},
        headers={"authorization": f"Bearer {OPERATOR_KEY}"},
    )
