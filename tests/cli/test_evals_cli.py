"""`trimtab eval run | resume | show | list | compare` against a running gateway with the
mock provider behind it; a run killed mid-way and resumed; bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.cli import support
from tests.evals.support import SLOW_MODELS, SUITE_FILE, chats, golden
from tests.support import (
    OPERATOR_KEY,
    ROUTE_KEYS,
    ROUTES,
    TRIMTAB,
    V2,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    base_config,
    wait_for,
)
from trimtab.client import Client
from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str, tmp_path: Path) -> Running:
    models = {**base_config("http://x", sqlite_url, tmp_path / "s")["models"], **SLOW_MODELS}
    return gateway(store=sqlite_url, keys=ROUTE_KEYS, models=models)


def trimtab(running: Running, *args: str, api_key: str = OPERATOR_KEY) -> tuple[int, str]:
    return support.trimtab(running, *args, api_key=api_key)


def setup(running: Running, tmp_path: Path, items: int) -> str:
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(ROUTES, "v1")
        c.push_dataset("golden", golden(items), "golden set")
        c.push_dataset("chats", chats(items), "chats")
    path = tmp_path / "evals.yaml"
    path.write_text(SUITE_FILE, encoding="utf-8")
    return str(path)


def chat_calls(upstream: MockUpstream) -> int:
    return sum(1 for r in upstream.requests if r.path == "/v1/chat/completions")


def row(out: str, first: str) -> list[str]:
    """The words of the printed line that starts with `first`."""
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [first])


def run_id_of(out: str) -> str:
    return next(w.rstrip(":") for w in out.split() if w.startswith("run_"))


def test_run_show_list_and_compare(
    running: Running, upstream: MockUpstream, tmp_path: Path
) -> None:
    suites = setup(running, tmp_path, items=20)
    code, out = trimtab(
        running, "eval", "run", "support-golden", "-f", suites, "--concurrency", "4"
    )
    assert code == 0, out
    first = run_id_of(out)
    assert "20 called, 0 from the cache, 0 already in the run; 0 failed" in out
    echoed = row(out, "echoed")
    assert echoed[:4] == ["echoed", "20", "0", "0.500"] and "50.0%" in echoed
    assert "intervals: mean, BCa bootstrap; pass rate, Wilson score" in out

    # the same suite again: every answer from the cache, nothing called
    before = chat_calls(upstream)
    code, out = trimtab(running, "eval", "run", "support-golden", "-f", suites, "--json")
    assert code == 0, out
    again = orjson.loads(out)
    assert again["cached"] == 20 and again["status"] == "complete"
    assert chat_calls(upstream) == before

    code, out = trimtab(running, "eval", "list", "--suite", "support-golden", api_key=VIEWER_KEY)
    assert code == 0, out
    assert out.index(again["id"]) < out.index(first)  # newest first

    code, out = trimtab(running, "eval", "show", first, "--items", api_key=VIEWER_KEY)
    assert code == 0, out
    assert "pass 1.00" in " ".join(row(out, "q0"))
    assert "fail 0.00" in " ".join(row(out, "q1"))

    # the same answers: no difference, and 20 items cannot show a drop of 0.02
    code, out = trimtab(running, "eval", "compare", again["id"], "--baseline", first, "--gate")
    assert code == 0, out
    assert f"{again['id']} against {first}: pass" in out
    assert "McNemar" in out and "underpowered" in out
    code, out = trimtab(running, "eval", "compare", again["id"], "--json", api_key=VIEWER_KEY)
    assert code == 0, out
    assert orjson.loads(out)["baseline"] == first  # the newest complete earlier run


def test_a_killed_run_resumes_without_calling_its_finished_items(
    running: Running, upstream: MockUpstream, tmp_path: Path
) -> None:
    suites = setup(running, tmp_path, items=16)
    env = {**os.environ, "TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY}
    proc = subprocess.Popen(
        [TRIMTAB, "eval", "run", "slow-golden", "-f", suites, "--concurrency", "2", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = Client(running.url, OPERATOR_KEY)
    try:
        wait_for(lambda: client.eval_runs(suite="slow-golden"), timeout_s=30)
        run_id = client.eval_runs(suite="slow-golden")[0]["id"]
        wait_for(lambda: client.eval_run(run_id)["done"] >= 4, timeout_s=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # the calls the killed runner left in flight reach the mock all the same: wait for
        # them to land before counting
        settled = [-1]

        def quiet() -> bool:
            now = chat_calls(upstream)
            if now == settled[0]:
                return True
            settled[0] = now
            time.sleep(0.4)  # longer than one call of the slow model
            return False

        wait_for(quiet, timeout_s=30)
        held = client.eval_run(run_id)["done"]
        assert 4 <= held < 16
        before = chat_calls(upstream)
        code, out = trimtab(running, "eval", "resume", run_id, "--concurrency", "2")
        assert code == 0, out
        assert f"{16 - held} called, 0 from the cache, {held} already in the run" in out
        assert chat_calls(upstream) - before == 16 - held
        detail = client.eval_run(run_id)
        assert detail["status"] == "complete" and detail["done"] == 16
        assert len(client.eval_results(run_id)) == 16
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_input_is_one_error_line(running: Running, tmp_path: Path) -> None:
    suites = setup(running, tmp_path, items=3)
    code, out = trimtab(running, "eval", "run", "nope", "-f", suites)
    assert code == 1
    assert "no suite 'nope' in its evals: section (it has: support-golden, slow-golden)" in out
    code, out = trimtab(running, "eval", "run", "x", "-f", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("evals:\n  s:\n    model: gpt-mock\n    dataset: chats\n    scorers: []\n")
    code, out = trimtab(running, "eval", "run", "s", "-f", str(bad))
    assert code == 1 and f"{bad}: evals.s.scorers" in out, out
    missing = tmp_path / "missing-dataset.yaml"
    missing.write_text(SUITE_FILE.replace("dataset: chats", "dataset: gone"))
    code, out = trimtab(running, "eval", "run", "slow-golden", "-f", str(missing))
    assert code == 1
    assert "suite 'slow-golden': no dataset named 'gone'" in out and "request id: req_" in out
    code, out = trimtab(running, "eval", "show", "run_nope")
    assert code == 1 and "no eval run 'run_nope'" in out
    code, out = trimtab(running, "eval", "list", "--tenant", "globex")
    assert code == 1 and "may not read tenant 'globex'" in out


def test_a_failing_provider_is_counted_and_the_gate_has_no_verdict(
    running: Running, tmp_path: Path
) -> None:
    suites = setup(running, tmp_path, items=12)
    broken = tmp_path / "broken.yaml"
    broken.write_text(SUITE_FILE.replace("model: gpt-slow", "model: gpt-500"))
    code, out = trimtab(running, "eval", "run", "slow-golden", "-f", suites)
    assert code == 0, out
    code, out = trimtab(running, "eval", "run", "slow-golden", "-f", str(broken))
    assert code == 0, out
    assert "12 failed" in out and "failed items" in out
    code, out = trimtab(running, "eval", "compare", run_id_of(out), "--gate")
    assert code == 2, out
    assert "no verdict" in out and "more than max_errors" in out


def test_ctrl_c_keeps_what_was_scored_and_names_resume(
    running: Running, upstream: MockUpstream, tmp_path: Path
) -> None:
    suites = setup(running, tmp_path, items=16)
    env = {**os.environ, "TRIMTAB_URL": running.url, "TRIMTAB_API_KEY": OPERATOR_KEY}
    proc = subprocess.Popen(
        [TRIMTAB, "eval", "run", "slow-golden", "-f", suites, "--concurrency", "2", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with Client(running.url, OPERATOR_KEY) as client:
        try:
            wait_for(lambda: client.eval_runs(suite="slow-golden"), timeout_s=30)
            run_id = client.eval_runs(suite="slow-golden")[0]["id"]
            wait_for(lambda: client.eval_run(run_id)["done"] >= 3, timeout_s=30)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        said = " ".join(err.decode().split())
        assert f"interrupted: `trimtab eval resume {run_id}` goes on where this stopped" in said
        held = client.eval_run(run_id)["done"]
        code, out = trimtab(running, "eval", "resume", run_id)
        assert code == 0, out
        assert f"{16 - held} called, 0 from the cache, {held} already in the run" in out


def test_run_with_a_baseline_compares_and_gates(
    running: Running, upstream: MockUpstream, tmp_path: Path
) -> None:
    suites = setup(running, tmp_path, items=20)
    code, out = trimtab(running, "eval", "run", "support-golden", "-f", suites)
    assert code == 0, out
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(V2, "v2")
    before = chat_calls(upstream)
    code, out = trimtab(
        running,
        "eval",
        "run",
        "support-golden",
        "-f",
        suites,
        "--version",
        "2",
        "--baseline",
        "stable",
        "--gate",
    )
    assert code == 0, out
    # the stable version's answers came from the cache: only v2's items were called
    assert chat_calls(upstream) - before == 20
    assert "0 called, 20 from the cache" in out and "20 called, 0 from the cache" in out
    assert ": pass (20 items;" in out and "underpowered" in out
    code, out = trimtab(
        running,
        "eval",
        "run",
        "support-golden",
        "-f",
        suites,
        "--version",
        "2",
        "--baseline",
        "1",
        "--json",
    )
    assert code == 0, out
    document = orjson.loads(out)
    assert document["baseline"]["route_version"] == 1 and document["run"]["route_version"] == 2
    assert document["comparison"]["outcome"] == "pass"
    # an error that prevents the verdict exits 2 under --gate
    code, out = trimtab(
        running, "eval", "run", "support-golden", "-f", suites, "--baseline", "9", "--gate"
    )
    assert code == 2 and "has no version v9" in out, out
    code, out = trimtab(running, "eval", "run", "support-golden", "-f", suites, "--gate")
    assert code == 2 and "--gate needs --baseline" in out


BAKEOFF_FILE = """
evals:
  chat-bakeoff:
    model: gpt-mock
    dataset: chats
    scorers:
      - {name: replied, kind: regex, pattern: "^mock reply"}
      - {name: cheap, kind: cost, max_usd: 0.00001}
"""


def test_a_bakeoff_of_models_prints_a_scorecard_with_verdicts_against_the_first(
    running: Running, upstream: MockUpstream, tmp_path: Path
) -> None:
    setup(running, tmp_path, items=12)
    path = tmp_path / "bakeoff.yaml"
    path.write_text(BAKEOFF_FILE, encoding="utf-8")
    models = "gpt-mock,claude-mock,gpt-500"
    code, out = trimtab(
        running, "eval", "bakeoff", "chat-bakeoff", "-f", str(path), "--models", models, "--json"
    )
    assert code == 0, out
    card = orjson.loads(out)
    assert [c["label"] for c in card["columns"]] == ["gpt-mock", "claude-mock", "gpt-500"]
    mock, claude, broken = card["columns"]
    assert mock["scorers"]["replied"]["pass_rate"] == 1.0
    assert claude["scorers"]["replied"]["pass_rate"] == 1.0
    # "hello cN": 2 words in, "mock reply to: hello cN": 5 out, at each model's prices
    assert mock["cost_usd"]["per_item"] == pytest.approx((2 * 0.15 + 5 * 0.60) / 1e6)
    assert claude["cost_usd"]["per_1000"] == pytest.approx((2 * 3.0 + 5 * 15.0) / 1e3)
    assert mock["latency_ms"]["p50"] > 0 and mock["error_rate"] == 0.0
    assert mock["versus_first"] is None
    # claude costs more on every item: 12 pass → fail flips on `cheap`
    assert claude["versus_first"]["cheap"]["verdict"] == "worse"
    assert claude["versus_first"]["replied"]["verdict"] in ("no_difference", "underpowered")
    assert claude["outcome"] is not None
    assert broken["error_rate"] == 1.0 and broken["scorers"]["replied"]["scored"] == 0
    assert broken["outcome"] == "no_verdict" or broken["versus_first_error"]

    # markdown on the terminal and an HTML report, from the cache this time
    before = chat_calls(upstream)
    report_path = tmp_path / "card.html"
    code, out = trimtab(
        running, "eval", "bakeoff", "chat-bakeoff", "-f", str(path),
        "--models", "gpt-mock,claude-mock", "--report", str(report_path),
    )  # fmt: skip
    assert code == 0, out
    assert chat_calls(upstream) == before
    assert "# Bake-off: suite chat-bakeoff" in out
    assert "| cheap vs first | — | worse, -1.000" in out
    assert "| cost per 1,000 items (USD) | 0.0033 | 0.081 |" in out
    html = report_path.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "<th>claude-mock</th>" in html
    assert '<td class="worse">worse, -1.000' in html


def test_a_bakeoff_of_route_versions_and_its_bad_input(running: Running, tmp_path: Path) -> None:
    suites = setup(running, tmp_path, items=6)
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(V2, "v2")
    code, out = trimtab(
        running, "eval", "bakeoff", "support-golden", "-f", suites, "--versions", "1,2", "--json"
    )
    assert code == 0, out
    card = orjson.loads(out)
    assert [c["label"] for c in card["columns"]] == ["v1", "v2"]
    assert card["columns"][1]["versus_first"]["echoed"]["n"] == 6
    code, out = trimtab(
        running, "eval", "bakeoff", "support-golden", "-f", suites, "--models", "a,b"
    )
    assert code == 1
    assert "suite 'support-golden' runs route 'support-answer': a bake-off of models" in out
    code, out = trimtab(running, "eval", "bakeoff", "slow-golden", "-f", suites, "--models", "a")
    assert code == 1 and "at least two" in out
    code, out = trimtab(
        running, "eval", "bakeoff", "slow-golden", "-f", suites, "--models", "a,b",
        "--report", str(tmp_path / "x.pdf"),
    )  # fmt: skip
    assert code == 1 and "a report is .md or .html, not '.pdf'" in out


def test_compare_writes_a_report(running: Running, tmp_path: Path) -> None:
    suites = setup(running, tmp_path, items=10)
    code, out = trimtab(running, "eval", "run", "support-golden", "-f", suites, "--json")
    assert code == 0, out
    first = orjson.loads(out)["id"]
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(V2, "v2")
    code, out = trimtab(
        running, "eval", "run", "support-golden", "-f", suites, "--version", "2", "--json"
    )
    assert code == 0, out
    second = orjson.loads(out)["id"]
    md, html = tmp_path / "cmp.md", tmp_path / "cmp.html"
    for path in (md, html):
        code, out = trimtab(
            running, "eval", "compare", second, "--baseline", first, "--report", str(path)
        )
        assert code == 0, out
        assert f"report written to {path}" in out
    text = md.read_text(encoding="utf-8")
    assert text.startswith(f"# Comparison: {second} against {first}: ")
    assert f"| baseline `{first}` | support-golden | route support-answer v1 | golden v1 |" in text
    assert f"| candidate `{second}` | support-golden | route support-answer v2 |" in text
    assert "| echoed |" in text and "McNemar" in text
    page = html.read_text(encoding="utf-8")
    assert "<h1>Comparison: " in page and "<td>echoed</td>" in page


JUDGED_FILE = """
evals:
  judged:
    model: gpt-mock
    dataset: chats
    scorers:
      - {name: fair, kind: judge, judge_route: judge-output, scale: [1, 5], repeats: 2,
         calibration: people}
"""

JUDGE_ROUTE = """
routes:
  judge-output:
    owner: ml@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - {role: user, content: "{{output}}"}
"""


def test_a_judge_with_a_calibration_set_reports_its_kappa(running: Running, tmp_path: Path) -> None:
    setup(running, tmp_path, items=3)
    # the mock answers "mock reply to: <the answer>": the judge reads the JSON inside
    people = [
        {"id": f"h{n}", "messages": [{"role": "user", "content": "q"}], "expected": label,
         "metadata": {"output": f'{{"score":{score},"reason":"ok"}}'}}
        for n, (score, label) in enumerate([(5, "pass"), (5, "pass"), (1, "fail"), (1, "pass")])
    ]  # fmt: skip
    with Client(running.url, OPERATOR_KEY) as c:
        c.apply(JUDGE_ROUTE, "judge")
        c.push_dataset("people", "".join(orjson.dumps(r).decode() + "\n" for r in people), "x")
    path = tmp_path / "judged.yaml"
    path.write_text(JUDGED_FILE, encoding="utf-8")
    code, out = trimtab(running, "eval", "run", "judged", "-f", str(path), "--json")
    assert code == 0, out
    detail = orjson.loads(out)
    # the chats' answers ("mock reply to: hello N") hold no JSON: errors, never a silent 0
    fair = detail["summary"]["scorers"][0]
    assert (fair["scored"], fair["errors"]) == (0, 3)
    calibration = detail["calibration"]["fair"]
    assert calibration["dataset"] == "people v1" and calibration["items"] == 4
    assert calibration["disagreements"] == ["h3"]
    # p_o 3/4; judge passes 1/2, people 3/4: p_e 1/2; kappa (0.75 - 0.5) / 0.5
    assert calibration["kappa"] == pytest.approx(0.5)
    code, out = trimtab(running, "eval", "run", "judged", "-f", str(path))
    assert code == 0, out
    assert (
        "judge fair against people on people v1 (4 items): Cohen's kappa 0.50, agreement 75%" in out
    )
    assert "they disagree on: h3" in out
