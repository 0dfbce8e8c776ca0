"""Private Redis servers for tests.

Tests must never touch the shared Redis on port 6379: each one gets its own
server, port and data directory so runs are isolated and crash tests are safe.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.embedded import EmbeddedRedis, find_redis_server, free_port

__all__ = ["EmbeddedRedis", "find_redis_server", "free_port", "start_redis"]


def start_redis(tmp_path: Path, appendfsync: str = "everysec") -> EmbeddedRedis:
    """Start a fresh server under ``tmp_path/redis`` on a free port.

    The caller owns it and must call ``stop()`` (or use it as a context manager).
    """
    return EmbeddedRedis(tmp_path / "redis", appendfsync=appendfsync).start()
