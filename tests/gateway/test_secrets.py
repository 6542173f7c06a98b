"""An upstream that echoes its credential: the key reaches no client, record or log."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from tests.support import (
    APP_KEY,
    KEYS,
    GatewayFactory,
    Running,
    base_config,
    new_database,
    start_server,
    stop_server,
)
from trimtab.config import ProviderConfig, parse_config
from trimtab.providers.build import build_providers
from trimtab.providers.secrets import REDACTED, Scrubber, provider_secrets
from trimtab.store.engine import make_engine
from trimtab.store.tables import requests
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.servers import free_port

OPENAI_KEY = "sk-live-0penai-Secret-4242"
ANTHROPIC_KEY = "sk-ant-live-Secret-4343"
HEADER_KEY = "hdr-Secret-token-4444"
PG_PASSWORD = "pg-s3cret-pw-4545"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, HEADER_KEY)
MSGS = [{"role": "user", "content": "hi"}]


# -- the scrubber, pure ----------------------------------------------------------------------


def test_provider_secrets_are_the_credentials_it_sends() -> None:
    config = ProviderConfig(
        kind="openai",
        base_url="https://user:url-Password-1@up.example/v1?api_key=query-Secret-2&x=plain-value-3",
        api_key="sk-12345678",
        headers={"x-custom-token": "custom-Secret-4", "openai-organization": "org-not-secret"},
    )
    found = provider_secrets(config, {"authorization": "Bearer sk-12345678"})
    assert set(found) == {
        "sk-12345678",
        "Bearer sk-12345678",
        "url-Password-1",
        "query-Secret-2",
        "custom-Secret-4",
    }
    short = ProviderConfig(kind="openai", base_url="http://x", api_key="x")
    assert provider_secrets(short, {"x-api-key": "x"}) == []  # too short to be worth scrubbing


def test_scrubber_replaces_every_occurrence() -> None:
    scrub = Scrubber(["sk-12345678", "Bearer sk-12345678"])
    text = "got 'Bearer sk-12345678'; key sk-12345678 and sk-12345678"
    assert scrub.text(text) == f"got '{REDACTED}'; key {REDACTED} and {REDACTED}"
    assert scrub.data(text.encode()) == scrub.text(text).encode()
    assert not Scrubber([]) and Scrubber([]).text("sk-12345678") == "sk-12345678"


def test_every_provider_scrubs_every_configured_credential() -> None:
    """An upstream's text never carries another upstream's key either (issue 8, item 7)."""
    config = parse_config(
        {"providers": echo_config("http://127.0.0.1:9")["providers"], "models": {}}, "test"
    )
    providers = build_providers(config)
    for name in ("upstream", "claude", "by-header"):
        scrub = providers[name]._scrub  # type: ignore[attr-defined]
        text = f"{OPENAI_KEY} {ANTHROPIC_KEY} Bearer {HEADER_KEY}"
        assert scrub.text(text) == f"{REDACTED} {REDACTED} {REDACTED}", name


# -- through a gateway, with the official SDKs -----------------------------------------------


def echo_config(upstream_url: str) -> dict[str, Any]:
    """Providers with long keys, and models on the mock's credential-echoing faults."""
    return {
        "providers": {
            "upstream": {
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "api_key": OPENAI_KEY,
            },
            "claude": {"kind": "anthropic", "base_url": upstream_url, "api_key": ANTHROPIC_KEY},
            # a credential configured as a header rather than api_key
            "by-header": {
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "headers": {"authorization": f"Bearer {HEADER_KEY}"},
            },
        },
        "models": {
            "gpt-echo": {"provider": "upstream", "model": "echo-key"},
            "gpt-echo-stream": {"provider": "upstream", "model": "echo-key-stream"},
            "claude-echo": {"provider": "claude", "model": "echo-key"},
            "claude-echo-stream": {"provider": "claude", "model": "echo-key-stream"},
            "header-echo": {"provider": "by-header", "model": "echo-key"},
        },
    }


def stored_row(engine: Engine, request_id: str) -> str:
    """Every column of the request's stored row, as text."""
    deadline = time.monotonic() + 15  # the writer commits asynchronously
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(select(requests).where(requests.c.id == request_id)).first()
        if row is not None:
            return repr(tuple(row))
        time.sleep(0.02)
    raise AssertionError(f"request {request_id} was never recorded")


def assert_scrubbed(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def running(gateway: GatewayFactory, upstream: MockUpstream) -> Running:
    return gateway(keys=KEYS, **echo_config(upstream.url))


@pytest.mark.parametrize("model", ["gpt-echo", "gpt-echo-stream", "header-echo"])
def test_openai_client_never_sees_the_upstream_key(
    running: Running, upstream: MockUpstream, model: str
) -> None:
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)
    upstream.clear()
    with pytest.raises(openai.APIStatusError) as caught:
        if model.endswith("stream"):
            for _ in client.chat.completions.create(model=model, messages=MSGS, stream=True):  # type: ignore[arg-type]
                pass
        else:
            client.chat.completions.create(model=model, messages=MSGS)  # type: ignore[arg-type]
    sent = upstream.requests[-1].headers["authorization"]
    assert sent.removeprefix("Bearer ") in (OPENAI_KEY, HEADER_KEY)  # the key was sent ...
    err = caught.value
    assert err.status_code == 502
    body = err.response.text
    assert "incorrect API key provided: " + REDACTED in body  # ... and its echo scrubbed
    assert_scrubbed(body + str(err))
    assert_scrubbed(stored_row(running.engine, err.response.headers["x-trimtab-request-id"]))


@pytest.mark.parametrize("model", ["claude-echo", "claude-echo-stream"])
def test_anthropic_client_never_sees_the_upstream_key(
    running: Running, upstream: MockUpstream, model: str
) -> None:
    client = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    upstream.clear()
    with pytest.raises(anthropic.APIStatusError) as caught:
        if model.endswith("stream"):
            with client.messages.stream(model=model, max_tokens=16, messages=MSGS) as events:  # type: ignore[arg-type]
                for _ in events:
                    pass
        else:
            client.messages.create(model=model, max_tokens=16, messages=MSGS)  # type: ignore[arg-type]
    assert upstream.requests[-1].headers["x-api-key"] == ANTHROPIC_KEY
    err = caught.value
    body = err.response.text
    assert "incorrect API key provided: " + REDACTED in body
    assert_scrubbed(body + str(err))
    assert_scrubbed(stored_row(running.engine, err.response.headers["x-trimtab-request-id"]))


# -- a real `trimtab serve`: its log and its PostgreSQL store --------------------------------


def test_served_process_logs_no_password_and_no_upstream_key(
    upstream: MockUpstream, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # the test cluster trusts loopback, so any password connects: one the log must not show
    url = make_url(new_database(postgres_server)).set(password=PG_PASSWORD)
    store = url.render_as_string(hide_password=False)
    config = base_config(upstream.url, store, tmp_path / "spill.jsonl", keys=KEYS)
    config.update(echo_config(upstream.url))
    path = tmp_path / "trimtab.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "trimtab.log"
    proc: subprocess.Popen[bytes] = start_server(path, port := free_port(), log)
    try:
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=APP_KEY, max_retries=0
        )
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="gpt-echo", messages=MSGS)  # type: ignore[arg-type]
        err = caught.value
        assert REDACTED in err.response.text
        assert_scrubbed(err.response.text)
        engine = make_engine(store)
        try:
            assert_scrubbed(stored_row(engine, err.response.headers["x-trimtab-request-id"]))
        finally:
            engine.dispose()
    finally:
        assert stop_server(proc)
    text = log.read_text()
    assert f"store postgresql://postgres:***@127.0.0.1:{postgres_server.port}/" in text
    assert PG_PASSWORD not in text
    assert_scrubbed(text)
