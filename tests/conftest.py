"""Shared fixtures: a private redis-server per test, real worker pools as separate processes.

Nothing here touches the machine's shared Redis on 6379. A pool runs in its own session (process
group), so ``kill()`` SIGKILLs the Celery parent and every child at once, like a crashed machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator import Settings, WorkflowClient
from tests.support.redis_proc import EmbeddedRedis, start_redis

ROOT = Path(__file__).resolve().parent.parent


def pool_environment(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A pool's environment: the engine's DEFAULT settings (no ORCH_* setting of the caller's shell
    leaks in; crash recovery is proved as users meet it), the test's Redis, and ``extra``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    return {**inherited, "REDIS_URL": url, "PYTHONPATH": str(ROOT), **(extra or {})}


# ORCH_TEST_STORE=cluster runs the store on a private 3-master Redis Cluster with a separate Redis as
# the Celery broker (kombu has no cluster transport): `.ci/run` runs the core, timer/event, children
# and lifecycle tests and the short chaos scenario so as an extra job. Tests that kill or restart
# "the" Redis skip there (the chaos driver crashes a cluster master instead: tests/chaos/stack.py).
TEST_STORE = os.environ.get("ORCH_TEST_STORE", "standalone")
if TEST_STORE not in ("standalone", "cluster"):
    raise RuntimeError(f"ORCH_TEST_STORE must be 'standalone' or 'cluster', got {TEST_STORE!r}")


class ClusterStore:
    """What ``redis_server`` is in a cluster run: ``url`` the cluster's store URL, ``broker_url`` the broker's."""

    def __init__(self, tmp_path: Path) -> None:
        from tests.support.cluster import RedisClusterProc

        self.cluster = RedisClusterProc(tmp_path / "cluster")
        self.broker = EmbeddedRedis(tmp_path / "broker")

    def start(self) -> ClusterStore:
        self.cluster.start()
        self.broker.start()
        return self

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def broker_url(self) -> str:
        return self.broker.url

    def kill(self) -> None:
        pytest.skip("kills the store's single Redis: a standalone-store test")

    restart = kill

    def stop(self) -> None:
        self.cluster.stop()
        self.broker.stop()


def store_env(server: EmbeddedRedis | ClusterStore) -> dict[str, str]:
    """The environment that points a pool at ``server``: the store, and the broker when it is apart."""
    env = {"REDIS_URL": server.url}
    if isinstance(server, ClusterStore):
        env["ORCH_BROKER_URL"] = server.broker_url
    return env


def store_settings(server: EmbeddedRedis | ClusterStore, **more: object) -> Settings:
    broker = server.broker_url if isinstance(server, ClusterStore) else None
    return Settings(redis_url=server.url, broker_url=broker, **more)  # type: ignore[arg-type]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis | ClusterStore]:
    server = ClusterStore(tmp_path).start() if TEST_STORE == "cluster" else start_redis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> redis.Redis:
    if isinstance(redis_server, ClusterStore):
        from orchestrator.store.connection import connect

        return connect(redis_server.url)  # type: ignore[no-any-return]
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def broker_client(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> redis.Redis:
    """The Celery broker's Redis: the store's own, or in a cluster run the separate broker."""
    if isinstance(redis_server, ClusterStore):
        return redis.Redis.from_url(redis_server.broker_url)
    return redis_client


@pytest.fixture
def client(redis_server: EmbeddedRedis) -> WorkflowClient:
    return WorkflowClient(settings=store_settings(redis_server))


class Pool:
    """A worker pool process: ``orchestrator worker MODULE``."""

    def __init__(self, module: str, url: str, app_id: str, concurrency: int, log_path: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.module, self.url, self.app_id, self.concurrency = module, url, app_id, concurrency
        self.log_path = log_path
        self.env = pool_environment(url, extra_env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Pool:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "worker", self.module, "--app-id", self.app_id,
             "-c", str(self.concurrency), "-l", "INFO"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 30) -> Pool:
        """Until the pool's consumer is up (Celery logs 'ready.')."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"pool exited with {self.proc.returncode}:\n{self.log_tail()}")
            if b"ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"pool {self.module} did not become ready:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole pool (parent and children), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def start_pool(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator:
    """Factory: ``start_pool("tests.apps.core_app", app_id="default", concurrency=2)``."""
    pools: list[Pool] = []

    def start(module: str, app_id: str = "default", concurrency: int = 2, ready: bool = True,
              env: dict[str, str] | None = None) -> Pool:
        # Each start appends to its own log, so a restarted pool's "ready." is its own.
        log_path = tmp_path / f"pool-{app_id}-{len(pools)}.log"
        pool = Pool(module, redis_server.url, app_id, concurrency, log_path, {**store_env(redis_server), **(env or {})})
        pool.start()
        pools.append(pool)
        return pool.wait_ready() if ready else pool

    yield start
    for pool in pools:
        pool.kill()
