"""The console's tests share one `trimtab serve` with seeded data and one browser."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import ViewportSize

from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_APP_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    base_config,
)

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS_ENV = "TRIMTAB_UI_SCREENSHOTS"  # a folder: save each page's PNG there
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
TIMEZONE = "Asia/Tokyo"  # the viewer's zone in the browser tests: not the server's UTC

ROUTES = """
routes:
  web-answer:
    owner: web@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      params: {temperature: 0.2, max_tokens: 200}
      messages:
        - role: system
          content: "You answer questions about {{topic}}.\\nBe brief."
        - role: user
          content: "{{question}}"
  gated-answer:
    owner: web@acme.example
    risk_tier: 2
    version:
      model: gpt-mock
      messages:
        - role: user
          content: "{{question}}"
"""

V2 = ROUTES.replace("Be brief.", "Be brief and kind.").replace("0.2", "0.4", 1)
SLOS = """
slos:
  web-availability:
    route: web-answer
    sli: {kind: availability}
    objective: 0.99
    window: 7d
"""
LONG_QUESTION = "Tell me everything about returns. " * 200  # ~6,800 characters


@dataclass(frozen=True)
class Console:
    """The served console: its URL and where its config and log are."""

    url: str
    folder: Path


def config(upstream_url: str, folder: Path) -> dict[str, Any]:
    data = base_config(
        upstream_url,
        f"sqlite:///{folder}/trimtab.db",
        folder / "spill.jsonl",
        keys=ROUTE_KEYS,
        budgets=[
            {"scope": "route:web-answer", "period": "day", "usd": 5},
            # one request of feature 'alarm' spends it: a budget alert to acknowledge
            {"scope": "feature:alarm", "period": "day", "usd": 1e-9, "on_exceed": "alert"},
        ],
        # the "kinder" v2's longer prompt costs 15 % more per request, with no variance: a
        # cost regression the controller would roll back after 10 requests an arm, racing
        # the operator's own rollback the console's test makes; cost may rise 50 % here
        rollouts={"check_interval_s": 0.2, "plans": {"fast": {"stages": [
            {"percent": p, "min_duration_s": 0, "min_canary_requests": 50,
             "max_duration_s": 600} for p in (50, 100)],
            "metrics": {"cost": {"tolerance": 0.5}}}}},
    )  # fmt: skip
    return data


def _api(url: str, path: str, key: str, **body: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)


def chat(url: str, key: str, model: str, content: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return _api(url, "/v1/chat/completions", key, **body)


def seed(url: str) -> None:
    """Two versions of two routes, an SLO, and traffic of two tenants (a few errors, one
    long body)."""
    for text, message in ((ROUTES, "first version"), (V2, "kinder, warmer")):
        resp = _api(url, "/api/routes/apply", OPERATOR_KEY, yaml=text, message=message)
        assert resp.status_code == 200, resp.text
    resp = _api(url, "/api/slos/apply", ADMIN_KEY, yaml=SLOS, message="web SLO")
    assert resp.status_code == 200, resp.text
    variables = {"topic": "returns", "question": "Can I return shoes?"}
    for i in range(8):
        resp = chat(url, APP_KEY, "route:web-answer", "hi", user=f"u{i}", variables=variables)
        assert resp.status_code == 200, resp.text
    assert chat(url, APP_KEY, "gpt-mock", LONG_QUESTION, user="long").status_code == 200
    assert chat(url, APP_KEY, "gpt-500", "fails").status_code >= 500
    alarm = chat(url, APP_KEY, "gpt-mock", "over budget", metadata={"feature": "alarm"})
    assert alarm.status_code == 200, alarm.text
    seed_evals(url)
    incident = _api(url, "/api/incidents", OPERATOR_KEY, type="toxic_output",
                    routes=["web-answer"], message="a customer saw a rude answer")  # fmt: skip
    assert incident.status_code == 201, incident.text
    for _ in range(3):
        resp = chat(url, GLOBEX_APP_KEY, "gpt-mock", "globex secret question")
        assert resp.status_code == 200, resp.text


def screenshot_folder(fallback: Path) -> Path:
    """Where the tests save screenshots: $TRIMTAB_UI_SCREENSHOTS (docs/ui to refresh the
    docs' images), else a temporary folder."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else fallback
    folder.mkdir(parents=True, exist_ok=True)
    return folder


EVAL_SUITE: dict[str, Any] = {
    "route": "web-answer",
    "dataset": "golden",
    "scorers": [{"name": "correct", "kind": "contains", "threshold": 1}],
    "gate": {"max_drop": {"correct": 0.05}},
}
EVAL_ITEMS = 6
REGRESSED = "q3"  # passes on the baseline run, fails on the candidate


def seed_evals(url: str) -> None:
    """A dataset and two complete runs of one suite: the later one regresses on REGRESSED."""
    content = "".join(
        f'{{"id": "q{i}", "variables": {{"question": "q{i}", "topic": "t"}}, "expected": "x"}}\n'
        for i in range(EVAL_ITEMS)
    )
    pushed = _api(url, "/api/datasets/golden/versions", OPERATOR_KEY, format="jsonl",
                  content=content, message="golden items")  # fmt: skip
    assert pushed.status_code == 200, pushed.text
    for failing in (set(), {REGRESSED}):
        run = _api(url, "/api/evals/runs", OPERATOR_KEY, suite="web-suite", definition=EVAL_SUITE)
        assert run.status_code == 201, run.text
        rows = []
        for i in range(EVAL_ITEMS):
            item = f"q{i}"
            passed = item not in failing
            score = {"value": 1.0 if passed else 0.0, "passed": passed,
                     "reason": "said x" if passed else "never said x"}  # fmt: skip
            rows.append({"item_id": item, "request_digest": "a" * 64, "output": f"answer {i}",
                         "scores": {"correct": score}})  # fmt: skip
        recorded = _api(url, f"/api/evals/runs/{run.json()['id']}/results", OPERATOR_KEY,
                        results=rows)  # fmt: skip
        assert recorded.status_code == 200, recorded.text
