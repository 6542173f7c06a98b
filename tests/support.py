"""What tests of several packages share, so that no test module imports another.

The keys of the sample gateway and its config, a gateway on a real socket, the operator
keys and the routes file they apply, the stored row of a request, `trimtab serve` as a
process, a PostgreSQL database of a test's own, and the README. A package's own pieces are
in tests/<package>/support.py; the fixtures in the conftest.py files.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
import pytest
import yaml
from sqlalchemy import Engine, func, select

from trimtab.config import Config
from trimtab.store.engine import make_engine
from trimtab.store.tables import requests
from trimtab.telemetry.queries import get_request
from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.servers import free_port
from trimtab.testing.serving import ServerThread

ADMIN_KEY = "tt-admin-acme-0001"
APP_KEY = "tt-app-acme-0001"
VIEWER_KEY = "tt-viewer-acme-0001"
GLOBEX_APP_KEY = "tt-app-globex-0001"
GLOBEX_VIEWER_KEY = "tt-viewer-globex-0001"


KEYS = [
    {"key": ADMIN_KEY, "tenant": "acme", "role": "admin", "owner": "ops@acme"},
    {"key": APP_KEY, "tenant": "acme", "role": "app", "owner": "support-bot"},
    {"key": VIEWER_KEY, "tenant": "acme", "role": "viewer"},
    {"key": GLOBEX_APP_KEY, "tenant": "globex", "role": "app"},
    {"key": GLOBEX_VIEWER_KEY, "tenant": "globex", "role": "viewer"},
]


def base_config(upstream_url: str, store: str, spill: Path, **extra: Any) -> dict[str, Any]:
    """The README's sample configuration plus models that fail in every way we test."""
    closed = free_port()
    faulty = {
        "gpt-500": "fail-500",
        "gpt-503": "fail-503",
        "gpt-429": "fail-429",
        "gpt-400": "fail-400",
        "gpt-reset": "reset",
        "gpt-badjson": "bad-json",
        "gpt-cut": "cut-stream",
        "gpt-refuse": "refuse",
    }
    models: dict[str, Any] = {
        "gpt-mock": {
            "provider": "upstream",
            "model": "mock-1",
            "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
        },
        "claude-mock": {
            "provider": "claude",
            "model": "claude-x",
            "pricing": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
        },
        "sim-1": {"provider": "sim"},
        "embed-mock": {"provider": "upstream", "model": "embed-1"},
        "gpt-hang": {"provider": "upstream", "model": "hang", "timeout_s": 0.5},
        "gpt-down": {"provider": "down", "model": "mock-1"},
        "claude-cut": {"provider": "claude", "model": "cut-stream"},
        "claude-500": {"provider": "claude", "model": "fail-500"},
        "claude-refuse": {"provider": "claude", "model": "refuse"},
        **{name: {"provider": "upstream", "model": m} for name, m in faulty.items()},
    }
    config: dict[str, Any] = {
        "store": {"url": store},
        "telemetry": {"spill_path": str(spill), "flush_interval_s": 0.02},
        "providers": {
            "upstream": {"kind": "openai", "base_url": upstream_url + "/v1", "api_key": "sk-up"},
            "claude": {"kind": "anthropic", "base_url": upstream_url, "api_key": "sk-ant-test"},
            "down": {"kind": "openai", "base_url": f"http://127.0.0.1:{closed}/v1"},
            "sim": {"kind": "simulator"},
        },
        "models": models,
    }
    for key, value in extra.items():
        config[key] = value
    return config


@dataclass
class Running:
    """A gateway serving on a real socket."""

    server: ServerThread
    config: Config

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def engine(self) -> Engine:
        engine: Engine = self.server_app.state.engine
        return engine

    server_app: Any = None

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(requests)).scalar_one())

    def wait_for_rows(self, n: int, timeout_s: float = 15.0) -> int:
        """Wait until at least n request rows are stored (the writer is asynchronous)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.count()
            if got >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.02)


GatewayFactory = Callable[..., Running]


def new_database(server: PostgresServer) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:{server.port}/{name}"


def stored(running: Running, request_id: str) -> dict[str, Any]:
    running.wait_for_rows(1)
    for _ in range(200):
        row = get_request(running.engine, request_id)
        if row is not None:
            return row
        running.wait_for_rows(running.count() + 1, timeout_s=0.05)
    raise AssertionError(f"request {request_id} was never recorded")


OPERATOR_KEY = "tt-operator-acme-0001"
GLOBEX_OPERATOR_KEY = "tt-operator-globex-0001"


ROUTE_KEYS = [
    *KEYS,
    {"key": OPERATOR_KEY, "tenant": "acme", "role": "operator", "owner": "ml@acme"},
    {"key": GLOBEX_OPERATOR_KEY, "tenant": "globex", "role": "operator", "owner": "ml@globex"},
]


ROUTES = """
routes:
  support-answer:
    owner: support-ml@acme.example
    risk_tier: 2
    version:
      model: gpt-mock
      params: {temperature: 0.2, max_tokens: 400}
      messages:
        - role: system
          content: "You are Acme's support assistant. Policy: {{policy}}"
        - role: user
          content: "{{question}}"
"""


V2 = ROUTES.replace("support assistant.", "friendly support assistant.").replace("0.2", "0.3")


TRIMTAB = str(Path(sys.executable).parent / "trimtab")


def start_server(config_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [TRIMTAB, "serve", "--config", str(config_path), "--port", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"trimtab exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"trimtab did not become ready:\n{log.read_text()}")


def start_gateway(config: dict[str, Any], folder: Path, name: str) -> tuple[Any, str]:
    """`trimtab serve` with this config (written to folder/NAME.yaml, its log beside it)
    on a free port: the process and its URL."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    return start_server(path, port, folder / f"{name}.log"), f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> bool:
    """Send the signal; True when the process finished its graceful shutdown.

    uvicorn re-raises the signal once shutdown is complete, so the exit status is the
    conventional "terminated by SIGTERM" (or 0 on older versions), never a crash.
    """
    proc.send_signal(sig)
    return proc.wait(timeout=60) in (0, -sig)


def count_rows(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(requests)).scalar_one())
    finally:
        engine.dispose()


README = Path(__file__).resolve().parents[1] / "README.md"
MAKE_RUN_URL = "http://127.0.0.1:4000"


def auth(key: str | None) -> dict[str, str]:
    """The headers of a call with this key (none without one)."""
    return {"authorization": f"Bearer {key}"} if key else {}


def wait_for(condition: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Poll `condition` until it holds; fail the test once `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {timeout_s:g} s"
        time.sleep(0.01)


def about(expected: float) -> float:
    """`pytest.approx(expected)` typed as the float it stands for: a field of a dataclass
    that is compared whole (`Reservation(True, 0.0, about(0.25))`)."""
    return cast(float, pytest.approx(expected))


GATE_SUITES = """
evals:
  gate-golden:
    route: {route}
    dataset: gate-items
    tags: [golden]
    scorers: [{{name: ok, kind: contains, threshold: 1}}]
  gate-safety:
    route: {route}
    dataset: gate-items
    tags: [safety]
    scorers: [{{name: ok, kind: contains, threshold: 1}}]
"""


def run_backed_evals(url: str, key: str, route: str, candidate: int, baseline: int = 1) -> None:
    """The evidence a tier-2 gate asks for, without a model: golden and safety suites of
    `route` applied, each run on `baseline` and `candidate` with the items' results recorded
    through the API (as `eval run` records them), and each candidate run's verdict written
    as the candidate's eval attestation (as `eval run --gate` writes it)."""
    from trimtab.client import Client

    items = "".join(
        f'{{"id": "i{i}", "messages": [{{"role": "user", "content": "q{i}"}}], "expected": "a"}}\n'
        for i in range(12)  # at least stats.paired.MIN_ITEMS, or no verdict
    )
    result = {"value": 1.0, "passed": True, "reason": "contains 'a'"}
    with Client(url, key) as c:
        c.push_dataset("gate-items", items, "gate items")
        c.apply_eval_suites(GATE_SUITES.format(route=route), "gate", source="gate.yaml")
        for suite in ("gate-golden", "gate-safety"):
            definition = c.eval_suite(suite)["definition"]
            runs = []
            for version in (baseline, candidate):
                run = c.create_eval_run(suite, definition, version=version)
                c.record_eval_results(
                    run["id"],
                    [
                        {"item_id": f"i{i}", "request_digest": f"{i:064x}", "output": "a",
                         "scores": {"ok": result}}
                        for i in range(12)
                    ],
                )  # fmt: skip
                runs.append(run["id"])
            c.attest_eval_run(runs[1], baseline=runs[0])
