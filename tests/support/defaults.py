"""Pools with the engine's default settings: the hardening tests (issue 19) prove behaviour as users meet it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def default_env(**extra: str) -> dict[str, str]:
    """Extra environment for a pool; every pool runs with the engine's defaults (tests/conftest.py)."""
    return dict(extra)


def default_pool(module: str, url: str, log_path: Path, concurrency: int = 3, **extra: str) -> Any:
    """A started, ready pool of ``module`` on ``url`` with default settings (``extra``: more environment)."""
    from tests.conftest import Pool

    return Pool(module, url, "default", concurrency, log_path, default_env(**extra)).start().wait_ready()


# How tests talk to the HTTP API in-process, as a program does: the loopback Host a local client sends
# and the header that marks a request as not forged by a web page (orchestrator/http/browsers.py).
API_CLIENT: dict[str, Any] = {"base_url": "http://localhost", "headers": {"X-Orchestrator-Client": "tests"}}


@contextmanager
def default_stack(tmp: Path, module: str = "tests.apps.hardening_app", concurrency: int = 2) -> Iterator[SimpleNamespace]:
    """A private redis-server and a ready pool of ``module`` with default settings, and a client on them:
    ``client``, ``pool``, ``redis`` (a raw client, for test setup), ``settings``, ``url``, ``tmp``."""
    import redis

    from orchestrator import Settings, WorkflowClient
    from tests.support.redis_proc import start_redis

    server = start_redis(tmp)
    pool = None
    try:
        pool = default_pool(module, server.url, tmp / "pool.log", concurrency=concurrency)
        settings = Settings(redis_url=server.url)
        yield SimpleNamespace(client=WorkflowClient(settings=settings), pool=pool, redis=redis.Redis.from_url(server.url),
                              settings=settings, url=server.url, tmp=tmp, server=server)
    finally:
        if pool is not None:
            pool.kill()
        server.stop()
