"""The console's server time per page at 1 million recorded requests (issue 16: < 300 ms).

    .venv/bin/python bench/ui_pages.py [--requests 1000000] [--runs 5] [--store URL]

Writes `--requests` request records (7 days, 4 routes, 3 models, 3 tenants, 2 % errors,
short bodies) through the real TelemetryStore (rows and per-minute rollups, as the writer
leaves them) into a SQLite file in a temporary directory (or the empty store `--store`
names), compacts the closed hours and days into the hourly rollups (what the SLO
evaluator does each cycle), applies two versions of each route, an SLO per route and
starts a rollout, then serves the app (`create_app`, the console mounted at /ui) on a
loopback socket, signs in with an admin key and times each page: the round trip of a GET
from a keep-alive httpx client on the same machine (so an upper bound of the server's
time), fastest and median of `--runs` after one warm-up. A non-admin key's pages are
scoped to one tenant and are timed too (`tenant`).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from trimtab.app import create_app
from trimtab.config import parse_config
from trimtab.registry.scope import Applier
from trimtab.registry.spec import load_routes
from trimtab.registry.store import RouteStore
from trimtab.slo.spec import load_slos
from trimtab.slo.store import SloStore
from trimtab.store.engine import make_engine, migrate
from trimtab.telemetry.hourly import compact
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore
from trimtab.testing.serving import ServerThread

ADMIN, VIEWER = "bench-admin-key-0001", "bench-viewer-key-0001"
ROUTES = ("support", "search", "summarize", "triage")
MODELS = ("gpt-mock", "claude-mock", "gpt-mini")
TENANTS = ("acme", "globex", "initech")
SPAN_S = 7 * 86400


def routes_yaml(version: int) -> str:
    lines = ["routes:"]
    for name in ROUTES:
        lines += [
            f"  {name}:", "    owner: bench@example.com", "    risk_tier: 0", "    version:",
            "      model: gpt-mock", f"      params: {{temperature: 0.{version}}}",
            "      messages:", "        - role: system",
            f'          content: "You handle {name}, version {version}."',
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


def records(first: int, count: int, total: int, end: float) -> list[RequestRecord]:
    """Requests `first` .. `first + count` of `total`, spread evenly over SPAN_S to `end`."""
    out = []
    body = orjson.dumps({"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]})
    answer = orjson.dumps({"choices": [{"message": {"role": "assistant", "content": "hello"}}]})
    for i in range(first, first + count):
        failed = i % 50 == 0
        out.append(
            RequestRecord(
                id=f"req_{i:012x}{i:016x}",
                started_at=end - SPAN_S * (i / total) - 1,
                api="openai",
                operation="chat",
                tenant=TENANTS[i % 3],
                request_model=MODELS[i // 3 % 3],
                provider="upstream",
                route=ROUTES[i % 4],
                version="v1",
                user=f"u{i % 5000}",
                session=f"s{i // 8:x}",  # sessions of 8 requests: the cost page counts them
                feature=("chat", "search")[i % 2],
                status_code=502 if failed else 200,
                duration_ms=80.0 + (i * 37) % 2000,
                input_tokens=40 + i % 100,
                output_tokens=20 + i % 300,
                cost_usd=0.00002 + (i % 7) * 1e-6,
                request_body=body.decode(),
                response_body=None if failed else answer.decode(),
            )
        )
    return out


def seed(url: str, n: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    store = TelemetryStore(engine)
    end = time.time()
    t = time.perf_counter()
    for start in range(0, n, 20_000):
        store.write(records(start, min(20_000, n - start), n, end))
    print(f"{n:,} requests written in {time.perf_counter() - t:.0f} s")
    routes = RouteStore(engine)
    models = frozenset(MODELS)
    for v in (1, 2):
        routes.apply(load_routes(routes_yaml(v), "bench", models),
                     applier=Applier("bench", "acme", True), message=f"v{v}")  # fmt: skip
    slos = "slos:\n" + "".join(
        f"  {r}-availability: {{route: {r}, sli: {{kind: availability}}, objective: 0.99}}\n"
        for r in ROUTES
    )
    SloStore(engine).apply(load_slos(slos), scope="", actor="bench")
    engine.dispose()


def compacted(url: str) -> None:
    """Migrate (a kept store may be older) and compact every closed hour and day into the
    hourly rollups, as the SLO evaluator's cycles leave them (telemetry/hourly.py)."""
    engine = make_engine(url)
    migrate(engine)
    t = time.perf_counter()
    spans = 0
    while cleared := compact(engine, datetime.now(UTC)):
        spans += cleared
    print(f"{spans:,} hours and days compacted in {time.perf_counter() - t:.0f} s")
    engine.dispose()


def config(url: str, folder: Path) -> dict[str, Any]:
    return {
        "store": {"url": url},
        "telemetry": {"spill_path": str(folder / "spill.jsonl")},
        "providers": {"upstream": {"kind": "simulator"}},
        "models": {m: {"provider": "upstream"} for m in MODELS},
        "keys": [
            {"key": ADMIN, "tenant": "acme", "role": "admin", "owner": "bench@admin"},
            {"key": VIEWER, "tenant": "globex", "role": "viewer"},
        ],
        "budgets": [{"scope": "route:*", "period": "day", "usd": 100}],
    }


def sign_in(base: str, key: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=120)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/login").text)
    assert token is not None
    resp = c.post("/ui/login", data={"csrf": token.group(1), "key": key})
    assert resp.status_code == 303, resp.text
    return c


def timed(c: httpx.Client, path: str, runs: int) -> tuple[float, float]:
    resp = c.get(path)  # warm-up
    assert resp.status_code == 200, (path, resp.status_code, resp.text[:500])
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        c.get(path)
        times.append((time.perf_counter() - t) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", help="an empty store URL (default: SQLite in a temp dir)")
    parser.add_argument(
        "--keep", type=Path, help="a SQLite file: seeded when missing, reused when present"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.store or f"sqlite:///{args.keep or folder / 'ui.db'}"
        if not (args.keep and args.keep.exists()):
            seed(url, args.requests)
        compacted(url)
        app = create_app(parse_config(config(url, folder), "bench"))
        server = ServerThread(app).start()
        try:
            admin = sign_in(server.url, ADMIN)
            viewer = sign_in(server.url, VIEWER)
            token = re.search(r'name="csrf" value="([^"]+)"', admin.get("/ui/routes").text)
            assert token is not None
            start = admin.post(
                "/ui/routes/support/rollout/start",
                data={"csrf": token.group(1), "to": "2", "reason": "bench", "confirm": "yes"},
            )
            assert start.status_code == 303 or "already has a rollout" in start.text
            first = admin.get("/ui/requests?limit=50").text
            rid = re.findall(r'href="/ui/requests/(req_[0-9a-f]+)"', first)[-1]
            deep = admin.get("/api/requests", params={"limit": 200},
                             headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
            cursor = deep.json()["next_cursor"]
            since = datetime.fromtimestamp(time.time() - 3 * 86400, UTC).isoformat()
            until = urlencode({"until": since})
            pages = [
                ("overview 1h", admin, "/ui"),
                ("overview 24h", admin, "/ui?window=24h"),
                ("overview 7d", admin, "/ui?window=7d"),
                ("overview 1h, tenant", viewer, "/ui"),
                ("series 1h", admin, "/ui/data/series?window=1h"),
                ("series 7d", admin, "/ui/data/series?window=7d"),
                ("requests", admin, "/ui/requests"),
                ("requests, tenant", viewer, "/ui/requests"),
                ("requests ?route=", admin, "/ui/requests?route=search"),
                ("requests ?model=&status=", admin, "/ui/requests?model=gpt-mini&status=error"),
                ("requests ?until= (3 days back)", admin, "/ui/requests?" + until),
                ("requests, next page by cursor", admin, f"/ui/requests?cursor={cursor}"),
                ("requests ?q= (in every body)", admin, "/ui/requests?q=HELLO"),
                ("requests ?q= (in none: 20,000 read)", admin, "/ui/requests?q=no+such+text"),
                ("request", admin, f"/ui/requests/{rid}"),
                ("routes", admin, "/ui/routes"),
                ("route", admin, "/ui/routes/support"),
                ("diff", admin, "/ui/routes/support/diff?from=1&to=2"),
                ("rollout", admin, "/ui/routes/support/rollout"),
                ("evals", admin, "/ui/evals"),
                ("slos (4, 30 days)", admin, "/ui/slos"),
                ("costs 30d", admin, "/ui/costs"),
                ("costs 30d, tenant", viewer, "/ui/costs"),
                ("keys", admin, "/ui/admin/keys"),
                ("audit", admin, "/ui/admin/audit"),
            ]  # fmt: skip
            print(f"{'page':<34} {'fastest':>9} {'median':>9}  (ms, {args.runs} runs)")
            for name, client, path in pages:
                fastest, median = timed(client, path, args.runs)
                flag = "" if median < 300 else "  > 300 ms"
                print(f"{name:<34} {fastest:9.1f} {median:9.1f}{flag}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
