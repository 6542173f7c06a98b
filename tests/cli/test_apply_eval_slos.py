"""`trimtab apply` of one file with a route, an online suite and an eval-score SLO on that
suite: the suites are applied before the SLOs, so the SLO's suite is there when it is
checked, and `--prune --dry-run` takes the file's suites as known (`planned_suites`);
an SLO naming a suite neither the files nor the server have is refused."""

from __future__ import annotations

from pathlib import Path

from tests.cli import support
from tests.cli.support import write
from tests.evals.support import golden
from tests.support import OPERATOR_KEY, ROUTES, Running
from trimtab.client import Client

FILE = """
evals:
  support-live:
    route: support-answer
    dataset: golden
    scorers:
      - {name: short, kind: length, max: 200}
    online: {sample: 0.5, scorers: [short]}
slos:
  support-judged:
    route: support-answer
    sli: {kind: eval_score, suite: support-live, scorer: short}
    objective: 0.9
"""


def test_an_slo_on_a_suite_the_same_file_creates(running: Running, tmp_path: Path) -> None:
    with Client(running.url, OPERATOR_KEY) as c:
        c.push_dataset("golden", golden(2), "golden set")
    file = write(tmp_path, ROUTES + FILE, "all.yaml")
    code, out = support.trimtab(
        running, "apply", "-f", file, "-m", "launch", "--prune", "--dry-run",
        api_key=OPERATOR_KEY,
    )  # fmt: skip
    assert code == 0, out
    assert "support-judged (SLO, tenant suite): would be created" in out
    code, out = support.trimtab(running, "apply", "-f", file, "-m", "launch", api_key=OPERATOR_KEY)
    assert code == 0, out
    first = out.index("support-live (eval suite): created")
    assert first < out.index("support-judged (SLO, tenant suite): created (")

    other = write(tmp_path, FILE.replace("suite: support-live", "suite: nope"), "other.yaml")
    code, out = support.trimtab(
        running, "apply", "-f", other, "-m", "x", "--prune", "--dry-run", api_key=OPERATOR_KEY
    )
    assert code == 1
    assert (
        "slos.support-judged.sli.suite: unknown suite 'nope' (neither tenant 'acme' nor the "
        "shared scope has one of that name)"
    ) in out
