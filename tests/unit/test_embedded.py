"""Tests for orchestrator.embedded against a real redis-server process."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestrator.embedded import EmbeddedRedis, find_redis_server, free_port
from tests.support.redis_proc import start_redis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private server, always stopped so no process outlives the test."""
    srv = start_redis(tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


def _client(srv: EmbeddedRedis) -> redis.Redis:
    """Client without retries, so a dead server fails at once instead of after backoff."""
    return redis.Redis.from_url(
        srv.url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
    )


def test_url_and_pid(server: EmbeddedRedis) -> None:
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    assert server.port != 6379
    assert server.pid is not None and server.pid > 0


def test_key_survives_restart(server: EmbeddedRedis) -> None:
    """AOF is reloaded on restart (RDB snapshots are disabled)."""
    _client(server).set("wf:1", "done")
    port = server.port
    server.restart()
    assert server.port == port
    assert _client(server).get("wf:1") == b"done"


def test_key_survives_kill_and_restart(server: EmbeddedRedis) -> None:
    """A process crash does not lose acknowledged writes: they reached the kernel."""
    _client(server).set("wf:2", "done")
    server.kill()
    server.start()
    assert _client(server).get("wf:2") == b"done"


def test_kill_makes_ping_fail(server: EmbeddedRedis) -> None:
    client = _client(server)
    assert client.ping()
    server.kill()
    assert server.pid is None
    with pytest.raises(redis.ConnectionError):
        _client(server).ping()


def test_context_manager_stops(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "r", appendonly=False) as srv:
        assert _client(srv).ping()
    assert srv.pid is None
    with pytest.raises(redis.ConnectionError):
        _client(srv).ping()


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_find_redis_server_is_executable() -> None:
    path = find_redis_server()
    assert os.path.isfile(path)
    assert os.access(path, os.X_OK)


def test_failed_start_reports_log_tail(tmp_path: Path) -> None:
    srv = EmbeddedRedis(tmp_path / "bad", appendfsync="bogus")
    with pytest.raises(RuntimeError, match="appendfsync"):
        srv.start()
    assert srv.pid is None
