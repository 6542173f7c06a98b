"""HttpProvider end to end: over TLS to a server with a self-signed certificate (trusted
through SSL_CERT_FILE, as a deployment would trust a private CA), and against the mock
upstream's faults — the error kinds, messages and Retry-After the gateway maps."""

from __future__ import annotations

import base64
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.support import BODY, KEY, RawServer, Reply, Run, chunked, provider, response
from trimtab.config import ProviderConfig
from trimtab.providers.base import UpstreamError
from trimtab.providers.openai import OpenAIProvider
from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[RawServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    events = b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    stream = chunked(events, headers=("content-type: text/event-stream",))

    def script(seen: object) -> Reply:
        return Reply(stream if b'"stream"' in getattr(seen, "body", b"") else response())

    with RawServer(script, tls=context) as server:
        yield server


def test_tls_upstream_trusted_through_ssl_cert_file(
    run: Run, tls_server: RawServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))

    async def go() -> tuple[list[bytes], list[bytes]]:
        async with provider(tls_server.url + "/v1") as p:
            calls = [await p.call("chat", BODY, 5) for _ in range(3)]
            stream = await p.open_stream("chat", {**BODY, "stream": True}, 5, 5)
            events = [e.data async for e in stream.events()]
            await stream.close()
            return calls, events

    calls, events = run(go())
    assert calls == [b'{"ok": true}'] * 3
    assert events == [b"1", b"2", b"[DONE]"]
    assert tls_server.connections == 1  # one handshake, kept alive
    assert tls_server.seen[0].header("host") == f"127.0.0.1:{tls_server.port}"


def test_tls_untrusted_certificate_is_a_connect_error(
    run: Run, tls_server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "none.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))  # whatever the host trusts, not this
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))

    async def go() -> UpstreamError:
        async with provider(tls_server.url + "/v1") as p:
            with pytest.raises(UpstreamError) as info:
                await p.call("chat", BODY, 5)
            return info.value

    err = run(go())
    assert err.kind == "connect"
    assert err.message.startswith(
        f"cannot connect to provider 'up' at {tls_server.url}/v1/chat/completions: "
        "SSLCertVerificationError"
    )
    assert "CERTIFICATE_VERIFY_FAILED" in err.message
    assert tls_server.seen == []


def test_credentials_in_base_url_are_basic_auth(run: Run) -> None:
    async def go() -> bytes:
        url = f"http://user:pa%3Ass-word-1@127.0.0.1:{server.port}/v1"
        async with provider(url, api_key=None) as p:
            return await p.call("chat", BODY, 5)

    with RawServer(lambda seen: Reply(response())) as server:
        run(go())
    expected = "Basic " + base64.b64encode(b"user:pa:ss-word-1").decode()
    assert server.seen[0].header("authorization") == expected


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as mock:
        yield mock


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_upstream_429_keeps_retry_after(run: Run, upstream: MockUpstream, stream: bool) -> None:
    async def go() -> UpstreamError:
        async with provider(upstream.openai_base_url) as p:
            with pytest.raises(UpstreamError) as info:
                body = {**BODY, "model": "fail-429", "stream": stream}
                if stream:
                    await p.open_stream("chat", body, 5, 5)
                else:
                    await p.call("chat", body, 5)
            return info.value

    err = run(go())
    assert (err.kind, err.status, err.retry_after) == ("status", 429, "1")
    assert err.message.startswith("provider 'up' returned HTTP 429: ")


def test_upstream_echoing_the_key_is_scrubbed(run: Run, upstream: MockUpstream) -> None:
    async def go() -> UpstreamError:
        async with provider(upstream.openai_base_url) as p:
            with pytest.raises(UpstreamError) as info:
                await p.call("chat", {**BODY, "model": "echo-key"}, 5)
            return info.value

    err = run(go())
    assert err.status == 401
    assert KEY not in err.message
    assert "[redacted]" in err.message


def test_upstream_faults(run: Run, upstream: MockUpstream) -> None:
    async def go() -> dict[str, UpstreamError]:
        got: dict[str, UpstreamError] = {}
        async with provider(upstream.openai_base_url) as p:
            for model in ("hang", "reset", "cut-stream"):
                with pytest.raises(UpstreamError) as info:
                    body = {**BODY, "model": model, "stream": model == "cut-stream"}
                    if model == "cut-stream":
                        stream = await p.open_stream("chat", body, 5, 5)
                        try:
                            async for _ in stream.events():
                                pass
                        finally:
                            await stream.close()
                    else:
                        await p.call("chat", body, 0.5)
                got[model] = info.value
            # and the provider still answers after all of them
            assert b"mock reply to: hi" in await p.call("chat", BODY, 5)
        return got

    got = run(go())
    assert got["hang"].kind == "timeout"
    assert got["hang"].message == "provider 'up' did not answer within 0.5s"
    assert got["reset"].kind == "stream_cut"
    assert got["reset"].message.startswith("provider 'up' dropped the connection: ")
    assert got["cut-stream"].kind == "stream_cut"
    assert got["cut-stream"].message.startswith("provider 'up' cut the stream: ")


def test_stream_answered_with_json_is_invalid(run: Run, upstream: MockUpstream) -> None:
    async def go() -> UpstreamError:
        async with provider(upstream.openai_base_url) as p:
            with pytest.raises(UpstreamError) as info:
                await p.open_stream("chat", BODY, 5, 5)  # no "stream": a JSON answer
            return info.value

    err = run(go())
    assert err.kind == "invalid_response"
    assert "'application/json; charset=utf-8' instead of an event stream" in err.message


def test_header_with_line_break_is_refused_at_construction() -> None:
    """A configured header value must not smuggle another header (or a request) in."""
    config = ProviderConfig(
        kind="openai", base_url="http://127.0.0.1:9/v1", headers={"x-team": "a\r\nx-evil: 1"}
    )
    with pytest.raises(ValueError, match="header 'x-team' has a line break or NUL"):
        OpenAIProvider("up", config)
