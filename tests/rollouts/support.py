"""The rollout tests' shared pieces: plans, a routes file, calls of the API and of the
route, traffic until a rollout's status; and for the controller over a real store, its
route, plan, clock and recorded requests."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, insert

from tests.support import (
    APP_KEY,
    OPERATOR_KEY,
    Running,
)
from trimtab.audit.log import Actor
from trimtab.canary.plans import Plan, Stage
from trimtab.registry.scope import RouteKey
from trimtab.rollouts.controller import RolloutController
from trimtab.rollouts.row import RolloutRow
from trimtab.rollouts.store import RolloutStore
from trimtab.store.tables import requests

FAST = {
    "stages": [
        {"percent": 50, "min_duration_s": 0, "min_canary_requests": 50, "max_duration_s": 600},
        {"percent": 100, "min_duration_s": 0, "min_canary_requests": 50, "max_duration_s": 600},
    ]
}

# the same, each caller keeping the version it was first given (in the shared state)
FAST_FIRST_SEEN = {**FAST, "assignment": "first_seen"}


# a healthy rollout's plan: every stage short, promotion still needs the required metrics
STEPWISE = {
    "stages": [
        {"percent": p, "min_duration_s": 0, "min_canary_requests": 50, "max_duration_s": 600}
        for p in (10, 25, 50, 100)
    ],
    "metrics": {"latency_p95": {"tolerance": 0.2}},
}

# stages that widen on their minimums alone, each caller keeping its first version
WIDENING_FIRST_SEEN = {
    "stages": [
        {"percent": p, "min_duration_s": 0, "min_canary_requests": 50, "max_duration_s": 600}
        for p in (10, 50, 100)
    ],
    "metrics": {
        **{name: {"required": False} for name in ("error_rate", "cost", "refusal_rate")},
        # what this plan is for is who is served what; a mock that answers in a few ms
        # has p95s that the machine's scheduling moves by more than 10 % under load
        **{name: {"required": False, "tolerance": 1.0} for name in ("latency_p95", "latency_p50")},
    },
    "assignment": "first_seen",
}


def routes_yaml(model: str, tier: int = 0, greeting: str = "Hello") -> str:
    return f"""
routes:
  faq:
    owner: faq@acme.example
    risk_tier: {tier}
    version:
      model: {model}
      messages:
        - role: system
          content: "{greeting}. Answer about {{{{topic}}}}."
"""


def api(running: Running, method: str, path: str, key: str = OPERATOR_KEY, **body: Any) -> Any:
    resp = httpx.request(
        method, running.url + path, json=body or None,
        headers={"authorization": f"Bearer {key}"}, timeout=30,
    )  # fmt: skip
    return resp


def apply(running: Running, text: str, message: str = "change") -> None:
    resp = api(running, "POST", "/api/routes/apply", yaml=text, message=message)
    assert resp.status_code == 200, resp.text


def route_call(http: httpx.Client, url: str, user: str) -> httpx.Response:
    """One call of the route `faq` as `user`, on the gateway at `url`."""
    return http.post(
        url + "/v1/chat/completions",
        json={
            "model": "route:faq",
            "messages": [{"role": "user", "content": "hi"}],
            "user": user,
            "variables": {"topic": "returns"},
        },
        headers={"authorization": f"Bearer {APP_KEY}"},
    )


def call(running: Running, user: str) -> str:
    """One route call as `user`; the version that served it (the response says)."""
    with httpx.Client(timeout=30) as http:
        resp = route_call(http, running.url, user)
    assert resp.status_code in (200, 503), resp.text
    return resp.headers["x-trimtab-version"]


def status(running: Running) -> dict[str, Any]:
    data: dict[str, Any] = api(running, "GET", "/api/routes/faq/rollout").json()
    return data


def drive(running: Running, until: set[str], limit: int, users: int = 200) -> dict[str, set[str]]:
    """Traffic from `users` users until the rollout's status is in `until`."""
    seen: dict[str, set[str]] = {}
    for i in range(limit):
        user = f"u{i % users}"
        seen.setdefault(user, set()).add(call(running, user))
        if i % 20 == 19 and status(running)["status"] in until:
            return seen
    raise AssertionError(f"rollout still {status(running)['status']} after {limit} requests")


ROUTE = "support-answer"


KEY = RouteKey("acme", ROUTE)  # the operator's route: tenant acme's


PLAN = Plan(
    stages=[
        Stage(percent=10, min_duration_s=0, min_canary_requests=20),
        Stage(percent=50, min_duration_s=0, min_canary_requests=20),
        Stage(percent=100, min_duration_s=0, min_canary_requests=20),
    ]
)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return datetime.now(UTC).timestamp() + self.offset


async def _nothing() -> None:
    return None


def controller(store: RolloutStore, clock: Clock | None = None) -> RolloutController:
    return RolloutController(store, _nothing, clock=clock or Clock())


def record(
    engine: Engine,
    version: int,
    n: int,
    *,
    errors: int = 0,
    refusals: int = 0,
    fired: int = 0,
    seed: int = 0,
    at: datetime | None = None,
    user: str | None = None,
    scale: float = 1.0,
) -> None:
    """`n` requests of the route's `version`: log-normal latency and cost, like a model's
    (both times `scale`: a user with long prompts); the first `errors` fail, the next
    `refusals` are refused, and on the last `fired` a guardrail fired (every request's
    record has its guardrails, as gateway/guarding.py writes them). All of `user`'s when
    given, else of no user."""
    rng = np.random.default_rng(seed)
    when = at or datetime.now(UTC)
    latency = scale * rng.lognormal(np.log(800.0), 0.4, n)
    cost = scale * rng.lognormal(np.log(0.001), 0.5, n)
    rows = [
        {
            "id": "req_" + secrets.token_hex(8),
            "started_at": when,
            "ended_at": when,
            "api": "openai",
            "operation": "chat",
            "tenant": "acme",
            "route": ROUTE,
            "version": f"v{version}",
            "status_code": 500 if i < errors else 200,
            "duration_ms": float(latency[i]),
            "overhead_ms": 0.5,
            "cost_usd": float(cost[i]),
            "finish_reasons": ["content_filter"] if errors <= i < errors + refusals else ["stop"],
            "streamed": False,
            "user_id": user,
            "attributes": guardrails(fired=i >= n - fired),
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(requests), rows)


def guardrails(*, fired: bool) -> dict[str, Any]:
    """A record's `attributes` with its guardrails: two checks ran, `pii` fired or not
    (each check's own entry has a `fired` flag whatever the request's list says)."""
    checks = [
        {"check": "pii", "action": "flag", "outcome": "flag" if fired else "pass",
         "fired": fired, "us": 12.0},
        {"check": "injection", "action": "block", "outcome": "pass", "fired": False, "us": 3.0},
    ]  # fmt: skip
    return {
        "guardrails": {
            "mode": "enforce", "policy": "route", "checks": checks,
            "fired": ["pii"] if fired else [], "blocked": None, "us": 15.0,
        }
    }  # fmt: skip


def start(store: RolloutStore) -> RolloutRow:
    return store.start(KEY, 2, "test", PLAN, Actor("key_ml", "ml@acme", "acme"), "try v2")


def current(store: RolloutStore) -> RolloutRow:
    ro = store.current(KEY) or store.latest(KEY)
    assert ro is not None
    return ro
