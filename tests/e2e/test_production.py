"""The production example (examples/production/, docs/production.md) run for real.

nginx terminates TLS in front of two `trimtab serve` processes that share one PostgreSQL
and one Redis; the mock provider stands in for OpenAI. The example files are the source:
the test substitutes loopback ports and temporary paths into them and fails if a string it
substitutes is no longer there.
"""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import count_rows, new_database, stop_server
from trimtab.config import load_config
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.redis_server import RedisServer
from trimtab.testing.servers import free_port

EXAMPLES = Path(__file__).parents[2] / "examples" / "production"
TRIMTAB = str(Path(sys.executable).parent / "trimtab")
ADMIN_KEY = "tt-admin-production-0001"
ENV = {
    "OPENAI_API_KEY": "sk-test-openai",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "TRIMTAB_DB_PASSWORD": "unused",
    "TRIMTAB_ADMIN_KEY": ADMIN_KEY,
}


def substitute(text: str, replacements: dict[str, str]) -> str:
    """Replace each string, which must occur in the text: the example file stays the source."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in the example: update the test with it"
        text = text.replace(old, new)
    return text


# -- the files parse ----------------------------------------------------------------------


def test_example_config_passes_check_config(tmp_path: Path) -> None:
    env = {**os.environ, **ENV}
    env.pop("TRIMTAB_INSTANCE", None)
    path = EXAMPLES / "trimtab.yaml"
    done = subprocess.run(
        [TRIMTAB, "check-config", str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "model gpt-4o-mini -> openai:gpt-4o-mini" in done.stdout
    assert "model claude-3-5-haiku-latest -> anthropic:claude-3-5-haiku-latest" in done.stdout
    assert "warning" not in done.stderr.lower(), done.stderr  # every ${VAR} was set


def test_example_config_per_process_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRIMTAB_INSTANCE (set by trimtab@.service) gives each process its port and spill file."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRIMTAB_INSTANCE", "4002")
    cfg = load_config(EXAMPLES / "trimtab.yaml")
    assert cfg.server.port == 4002
    assert cfg.telemetry.spill_path == "/var/lib/trimtab/spill-4002.jsonl"
    assert cfg.store.url.startswith("postgresql://")
    assert cfg.state.url == "redis://127.0.0.1:6379/0"
    assert cfg.providers["openai"].api_key == "sk-test-openai"
    assert cfg.providers["anthropic"].api_key == "sk-ant-test"
    monkeypatch.delenv("TRIMTAB_INSTANCE")
    assert load_config(EXAMPLES / "trimtab.yaml").server.port == 4000  # trimtab.service


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((EXAMPLES / name).read_text())
    return parser


@pytest.mark.parametrize("name", ["trimtab.service", "trimtab@.service"])
def test_systemd_units(name: str, tmp_path: Path) -> None:
    unit = _unit(name)["Service"]
    assert unit["ExecStart"] == (
        "/opt/trimtab/venv/bin/trimtab serve --config /etc/trimtab/trimtab.yaml"
    )
    # the stop sequence docs/production.md describes: SIGTERM, then up to 100 s to drain
    assert unit["KillSignal"] == "SIGTERM"
    assert unit["KillMode"] == "mixed"
    assert unit["TimeoutStopSec"] == "100s"
    assert unit["Restart"] == "on-failure"
    assert unit["EnvironmentFile"] == "/etc/trimtab/trimtab.env"
    if name == "trimtab@.service":
        assert unit["Environment"] == "TRIMTAB_INSTANCE=%i"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return  # the INI checks above still ran
    # verify insists the binary exists: point ExecStart at this venv's trimtab
    text = substitute((EXAMPLES / name).read_text(), {"/opt/trimtab/venv/bin/trimtab": TRIMTAB})
    (tmp_path / name).write_text(text)
    instance = "trimtab@4001.service" if name == "trimtab@.service" else name
    done = subprocess.run(
        [analyze, "verify", instance], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    # unknown keys and bad values are only warnings (exit 0): none may be printed
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# -- nginx, TLS, two processes ------------------------------------------------------------


def _nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found is None:
        if os.environ.get("CI"):
            raise AssertionError("nginx is missing: .ci/run installs it")
        pytest.skip("nginx not installed (apt-get install nginx)")
    return found


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost: (ca, cert, key)."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            raise AssertionError("openssl is missing: .ci/run installs it")
        pytest.skip("openssl not installed")
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, csr = folder / "server.pem", folder / "server-key.pem", folder / "server.csr"
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_subject = ["-subj", "/CN=trimtab test CA", "-x509", "-days", "1"]
    signed = ["-req", "-days", "1", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"]
    for command in (
        ["req", *new_key, *ca_subject, "-keyout", ca_key, "-out", ca],
        ["req", *new_key, "-subj", "/CN=localhost", "-keyout", key, "-out", csr],
        ["x509", *signed, "-in", csr, "-extfile", ext, "-out", cert],
    ):
        argv = ["openssl", *map(str, command)]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return ca, cert, key


def render_nginx(
    folder: Path, cert: Path, key: Path, upstreams: list[int], http: int, https: int
) -> Path:
    text = (EXAMPLES / "nginx.conf").read_text()
    user = "user root;" if os.geteuid() == 0 else ""  # a non-root nginx cannot switch users
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = substitute(
        text,
        {
            "user www-data;": user,
            "pid /run/nginx.pid;": f"pid {folder}/nginx.pid;",
            "/var/log/nginx/": f"{folder}/",
            "listen 80;": f"listen 127.0.0.1:{http};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
            "/etc/ssl/trimtab/fullchain.pem": str(cert),
            "/etc/ssl/trimtab/privkey.pem": str(key),
            "server 127.0.0.1:4001 ": f"server 127.0.0.1:{upstreams[0]} ",
            "server 127.0.0.1:4002 ": f"server 127.0.0.1:{upstreams[1]} ",
            "http {\n": "http {\n" + temp,
        },
    )
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def render_trimtab(folder: Path, store: str, redis: str, mock: str) -> Path:
    """The example config on loopback: the mock for both providers, a model that drips."""
    text = substitute(
        (EXAMPLES / "trimtab.yaml").read_text(),
        {
            "postgresql://trimtab:${TRIMTAB_DB_PASSWORD}@127.0.0.1:5432/trimtab": store,
            "redis://127.0.0.1:6379/0": redis,
            "/var/lib/trimtab/": f"{folder}/",
            "https://api.openai.com/v1": f"{mock}/v1",
            "https://api.anthropic.com": mock,
            # the mock waits 300 ms between streamed chunks for this model name
            "\nmodels:\n": "\nmodels:\n  gpt-drip:\n    provider: openai\n    model: drip-300\n",
        },
    )
    path = folder / "trimtab.yaml"
    path.write_text(text)
    return path


@dataclass
class Deployment:
    url: str  # https through nginx
    http_url: str  # nginx's plain-HTTP port, which redirects
    ca: Path
    procs: list[subprocess.Popen[bytes]]
    ports: list[int]
    store: str
    logs: list[Path]
    config: Path

    def client(self) -> openai.OpenAI:
        http = httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca)), timeout=30)
        return openai.OpenAI(
            base_url=self.url + "/v1",
            api_key=ADMIN_KEY,
            http_client=http,  # type: ignore[arg-type]  # the SDK's stubs name httpx2's Client
            max_retries=0,
        )

    def record(self, request_id: str) -> dict[str, Any]:
        """A request's record from the shared store, through nginx (waits for the writer)."""
        deadline = time.monotonic() + 15
        while True:
            resp = httpx.get(
                f"{self.url}/api/requests/{request_id}",
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
                verify=ssl.create_default_context(cafile=str(self.ca)),
                timeout=10,
            )
            if resp.status_code == 200 or time.monotonic() > deadline:
                assert resp.status_code == 200, resp.text
                found: dict[str, Any] = resp.json()
                return found
            time.sleep(0.05)

    def served(self, port: int) -> float:
        """Requests this process has counted in its own /metrics (read directly, not via nginx)."""
        resp = httpx.get(
            f"http://127.0.0.1:{port}/metrics",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return sum(
            sample.value
            for family in text_string_to_metric_families(resp.text)
            if family.name == "trimtab_requests"
            for sample in family.samples
            if sample.name == "trimtab_requests_total"
        )


def launch(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`trimtab serve` as trimtab@PORT.service runs it: the port and the spill file come
    from TRIMTAB_INSTANCE."""
    return subprocess.Popen(
        [TRIMTAB, "serve", "--config", str(config)],
        env={**os.environ, "TRIMTAB_INSTANCE": str(port)},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"trimtab exited early:\n{log.read_text()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"trimtab did not become ready:\n{log.read_text()}")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited:\n{log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not listen")


@pytest.fixture
def deployment(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    upstream: MockUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    nginx = _nginx()
    ca, cert, key = make_certificates(tmp_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    store = new_database(postgres_server)
    redis = redis_server.url.rsplit("/", 1)[0] + "/7"  # a db of its own in the shared Redis
    config = render_trimtab(tmp_path, store, redis, upstream.url)
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"trimtab-{port}.log" for port in ports]
    proxy: subprocess.Popen[bytes] | None = None
    try:
        # both at once, as systemd starts trimtab@4001 and trimtab@4002 on boot: one
        # migrates the empty database under the advisory lock, the other waits for it
        procs.extend(launch(config, port, log) for port, log in zip(ports, logs, strict=True))
        for proc, port, log in zip(procs, ports, logs, strict=True):
            wait_ready(proc, port, log)
        migrated = [log for log in logs if "Running upgrade" in log.read_text()]
        assert len(migrated) == 1, [log.read_text() for log in logs]
        http, https = free_port(), free_port()
        conf = render_nginx(tmp_path, cert, key, ports, http, https)
        nginx_log = tmp_path / "nginx-stderr.log"
        proxy = subprocess.Popen(
            [
                nginx,
                "-p",
                str(tmp_path),
                "-c",
                str(conf),
                "-e",
                str(tmp_path / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=nginx_log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait_port(https, proxy, nginx_log)
        yield Deployment(
            f"https://127.0.0.1:{https}",
            f"http://127.0.0.1:{http}",
            ca,
            procs,
            ports,
            store,
            logs,
            config,
        )
    finally:
        if proxy is not None:
            proxy.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proxy.kill()
        for proc in procs:
            if proc.poll() is None:
                stop_server(proc)


def _ask(client: openai.OpenAI, text: str) -> str:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content or ""


def test_production_deployment(deployment: Deployment) -> None:
    with deployment.client() as client:
        check_deployment(deployment, client)


def check_deployment(deployment: Deployment, client: openai.OpenAI) -> None:
    a, b = deployment.ports

    # completions over TLS through nginx, and both processes get traffic (each process's
    # counter moves once its writer has stored the record: wait for it)
    for i in range(6):
        assert _ask(client, f"hello {i}") == f"mock reply to: hello {i}"
    deadline = time.monotonic() + 15
    while not (deployment.served(a) > 0 and deployment.served(b) > 0):
        assert time.monotonic() < deadline, "one process got no request"
        time.sleep(0.05)

    # a whole stream, in several chunks
    words = "one two three four"
    stream = client.chat.completions.create(
        model="gpt-drip", messages=[{"role": "user", "content": words}], stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == f"mock reply to: {words}"
    assert sum(1 for p in pieces if p) > 1

    # ... that is not buffered on the way: hang up at its first content chunk. Unbuffered,
    # the provider is still sending (300 ms between chunks), so trimtab sees the client go
    # and records 499; a buffering proxy delivers nothing before trimtab has finished: 200.
    stream = client.chat.completions.create(
        model="gpt-drip", messages=[{"role": "user", "content": words}], stream=True
    )
    request_id = stream.response.headers["x-trimtab-request-id"]
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    record = deployment.record(request_id)
    assert record["http.response.status_code"] == 499, "the stream was buffered on the way"
    assert record["error.type"] == "client_disconnected"

    # a body over trimtab's limit gets trimtab's 413 in the client's format, not nginx's page
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 10_600_000}]}
    too_large = httpx.post(
        f"{deployment.url}/v1/chat/completions",
        json=big,
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        verify=ssl.create_default_context(cafile=str(deployment.ca)),
        timeout=30,
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "request_too_large"
    sent = 6 + 2 + 1  # the completions, the streams and the refused body

    # plain HTTP is redirected to HTTPS
    redirect = httpx.get(f"{deployment.http_url}/v1/models", timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["location"].startswith("https://")

    for port, proc in zip(deployment.ports, deployment.procs, strict=True):
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss = next(line for line in status.splitlines() if line.startswith("VmRSS"))
        print(f"trimtab on port {port}: {rss.split(':')[1].strip()}")

    # SIGTERM one process while requests keep coming: nginx sends them to the other. The
    # stopping process drains its keep-alive connections for up to ~6 s (cli/server.py),
    # so the requests are paced to stay inside the example's 600 a minute per key
    first = deployment.procs[0]
    first.send_signal(signal.SIGTERM)
    statuses: list[str] = []
    while first.poll() is None or len(statuses) < 20:
        statuses.append(_ask(client, f"during {len(statuses)}"))
        assert len(statuses) < 2000, "the stopped process never exited"
        time.sleep(0.02)
    assert first.wait(timeout=60) in (0, -signal.SIGTERM), deployment.logs[0].read_text()
    assert statuses == [f"mock reply to: during {i}" for i in range(len(statuses))]
    sent += len(statuses)

    # the rest of a rolling restart: start it again, wait for /readyz, and nginx sends it
    # requests again once its fail_timeout (5 s) has passed
    config = deployment.config
    deployment.procs[0] = launch(config, deployment.ports[0], deployment.logs[0])
    wait_ready(deployment.procs[0], deployment.ports[0], deployment.logs[0])
    deadline = time.monotonic() + 20
    while deployment.served(deployment.ports[0]) == 0:
        assert time.monotonic() < deadline, "nginx never sent the restarted process a request"
        assert _ask(client, f"after {sent}") == f"mock reply to: after {sent}"
        sent += 1
        time.sleep(0.1)
    # every request is recorded once in the shared store, whichever process served it
    deadline = time.monotonic() + 15
    while count_rows(deployment.store) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count_rows(deployment.store) == sent
