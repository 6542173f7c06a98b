"""The rollout, rollback, attestation and feedback bodies are strict, like keys and apply
(issue 8, item 12)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rollouts.support import api, apply, routes_yaml
from tests.support import APP_KEY, Running

CASES = [
    ("/api/routes/faq/rollouts", {"to": "v2", "reason": "go", "stage": 2}, "stage"),
    ("/api/routes/faq/rollout/pause", {"reason": "x", "resaon": "typo"}, "resaon"),
    ("/api/routes/faq/rollback", {"reason": "x", "force": True}, "force"),
    ("/api/routes/faq/versions/v2/attestations", {"kind": "eval", "result": "pass",
                                                  "by": "someone-else"}, "by"),
    ("/api/feedback", {"request_id": "req_1", "thumbs": "up", "tenant": "globex"}, "tenant"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "unknown"), CASES)
def test_unknown_fields_are_refused_by_name(
    running: Running, path: str, body: dict[str, Any], unknown: str
) -> None:
    apply(running, routes_yaml("sim-1"))
    apply(running, routes_yaml("sim-1", greeting="Hi"))
    key = APP_KEY if path == "/api/feedback" else None
    resp = api(running, "POST", path, **({"key": key} if key else {}), **body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == unknown and "unknown field" in error["message"]
    # and nothing happened
    assert api(running, "GET", "/api/routes/faq").json()["stable_version"] == 1
    assert api(running, "GET", "/api/routes/faq/rollout").status_code == 404
