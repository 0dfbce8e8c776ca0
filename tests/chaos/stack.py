"""The Redis servers of a chaos run, and which of them the Redis monkey crashes.

``standalone`` (the default): one private ``redis-server`` (AOF, ``appendfsync always``) is the store
and the Celery broker; the monkey crashes it.

``cluster`` (``ORCH_TEST_STORE=cluster``, ``--store cluster``): the store on a private 3-master Redis
Cluster (tests/support/cluster.py) and the broker on a separate Redis (kombu has no cluster
transport), every node with ``appendfsync always``. The monkey crashes a cluster master: restart k
hits master k mod 3 (SIGKILL, then the same port, data and ``nodes.conf``). That is what the cluster
adds: the engine's cluster clients (pools, client, the app's activities) losing one master while the
others still answer, then finding it again, every duty and step riding out the errors meanwhile
(with ``--outage`` longer than the nodes' 2 s timeout the cluster itself is marked failed). A crash
of the broker would repeat the standalone run's (the same kombu transport against the same kind of
plain Redis), so the broker stays up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator import Settings
from orchestrator.store.connection import connect
from tests.support.cluster import RedisClusterProc
from tests.support.redis_proc import EmbeddedRedis

STORES = ("standalone", "cluster")


class Stack:
    def __init__(self, store: str, workdir: Path) -> None:
        if store not in STORES:
            raise ValueError(f"store must be one of {STORES}, got {store!r}")
        self.store = store
        self.cluster: RedisClusterProc | None = None
        if store == "cluster":
            self.cluster = RedisClusterProc(workdir / "cluster", appendfsync="always")
            self.broker = EmbeddedRedis(workdir / "broker", appendfsync="always")
            self.victims: list[EmbeddedRedis] = list(self.cluster.masters)
        else:
            self.broker = EmbeddedRedis(workdir / "redis", appendfsync="always")
            self.victims = [self.broker]

    def start(self) -> Stack:
        if self.cluster is not None:
            self.cluster.start()
        self.broker.start()
        return self

    def stop(self) -> None:
        self.broker.stop()
        if self.cluster is not None:
            self.cluster.stop()

    @property
    def url(self) -> str:
        """The store URL (the pools' ``REDIS_URL``)."""
        return self.cluster.url if self.cluster is not None else self.broker.url

    @property
    def pool_env(self) -> dict[str, str]:
        """What a pool needs besides ``REDIS_URL`` (engine defaults otherwise)."""
        return {"ORCH_BROKER_URL": self.broker.url} if self.cluster is not None else {}

    def settings(self) -> Settings:
        return Settings(redis_url=self.url, broker_url=self.broker.url if self.cluster is not None else None)

    def client(self, **kwargs: Any) -> Any:
        """A raw client of the store: a Redis, or the cluster's client."""
        return connect(self.url, **kwargs)

    def describe(self) -> str:
        if self.cluster is None:
            return f"redis {self.url} (appendfsync always)"
        return (f"store {self.url} (3 masters), broker {self.broker.url} (appendfsync always everywhere; "
                "the Redis restarts crash a cluster master)")


__all__ = ["STORES", "Stack"]
