"""Tests for the throwaway PostgreSQL and Redis servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest

from trimtab.testing import servers
from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.redis_server import RedisServer
from trimtab.testing.servers import ServerStartError, ServerUnavailable, free_port


def _port_closed(port: int) -> bool:
    """Whether nothing accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def _raw_ping(port: int) -> bytes:
    """Send a raw RESP PING and return the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    """A running throwaway PostgreSQL (skipped when PostgreSQL is not installed)."""
    server = PostgresServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A running throwaway Redis (skipped when redis-server is not installed)."""
    server = RedisServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.postgres
def test_postgres_select_1_and_stop(pg: PostgresServer) -> None:
    assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/trimtab"
    assert pg.sqlalchemy_url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/trimtab"
    with psycopg.connect(pg.url, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1, current_database(), current_user").fetchone()
        assert row == (1, "trimtab", "postgres")
        settings = conn.execute(
            "SELECT current_setting('fsync'), current_setting('synchronous_commit'),"
            " current_setting('full_page_writes')"
        ).fetchone()
        assert settings == ("off", "off", "off")
    port, directory = pg.port, pg.directory
    assert pg.running
    assert directory.is_dir()
    pg.stop()
    assert not pg.running
    assert _port_closed(port)
    assert not directory.exists()
    pg.stop()  # idempotent


@pytest.mark.postgres
def test_postgres_listens_on_its_private_socket_dir(pg: PostgresServer) -> None:
    assert (pg.socket_dir / f".s.PGSQL.{pg.port}").exists()
    with psycopg.connect(
        host=str(pg.socket_dir), port=pg.port, user="postgres", dbname="trimtab"
    ) as conn:
        assert conn.execute("SELECT 2").fetchone() == (2,)


@pytest.mark.postgres
def test_postgres_context_manager_and_custom_database() -> None:
    try:
        with PostgresServer(database="other_db") as server:
            port = server.port
            assert server.url.endswith("/other_db")
            with psycopg.connect(server.url) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == ("other_db",)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    assert _port_closed(port)


def test_postgres_missing_binaries_raise_unavailable() -> None:
    with pytest.raises(ServerUnavailable, match="initdb/postgres not found"):
        PostgresServer(bindir="/nonexistent/pg/bin").start()


def test_redis_ping_and_stop(redis: RedisServer) -> None:
    assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
    assert _raw_ping(redis.port).startswith(b"+PONG")
    assert redis.ping()
    port, directory = redis.port, redis.directory
    redis.stop()
    assert _port_closed(port)
    assert not directory.exists()
    assert not redis.running
    redis.stop()  # idempotent


def test_redis_set_get_raw_resp(redis: RedisServer) -> None:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as sock:
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        assert sock.recv(64) == b"+OK\r\n"
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        assert sock.recv(64) == b"$1\r\nv\r\n"


def test_two_redis_servers_are_independent() -> None:
    try:
        with RedisServer() as first, RedisServer() as second:
            assert first.port != second.port
            assert first.directory != second.directory
            assert first.ping() and second.ping()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


def test_redis_missing_binary_raises_unavailable() -> None:
    with pytest.raises(ServerUnavailable, match="redis-server not found"):
        RedisServer(binary="/nonexistent/redis-server").start()


def test_redis_retries_when_the_chosen_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(servers, "free_port", lambda host="127.0.0.1": next(ports))
        try:
            with RedisServer() as server:
                assert server.port != taken
                assert server.ping()
        except ServerUnavailable as exc:
            pytest.skip(str(exc))


def test_redis_explicit_taken_port_fails_clearly() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        server = RedisServer(port=taken)
        try:
            with pytest.raises(ServerStartError, match="redis exited"):
                server.start()
        except ServerUnavailable as exc:
            pytest.skip(str(exc))
        assert not server.running
