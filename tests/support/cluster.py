"""A private Redis Cluster for tests: three masters (optionally a replica each), own ports and temp dir.

Every node is a ``redis-server --cluster-enabled yes`` on 127.0.0.1. The cluster bus listens on
port + 10000, so node ports are picked below 55535 with both the port and its bus port free. Slots
are assigned and nodes introduced with redis-py (``CLUSTER ADDSLOTSRANGE`` / ``CLUSTER MEET``), so
no ``redis-cli`` is needed.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import redis

from orchestrator.embedded import EmbeddedRedis

SLOTS = 16384
_MAX_PORT = 55535  # the bus port (port + 10000) must stay a valid port


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int, start: int = 30000, stop: int = _MAX_PORT) -> list[int]:
    """``count`` ports in [start, stop) (below 55535) whose bus ports (+10000) are free too."""
    stop = min(stop, _MAX_PORT)
    span = stop - start
    if span < count:
        raise ValueError(f"cannot pick {count} cluster ports in {start}-{stop - 1}")
    ports: list[int] = []
    offset = (time.monotonic_ns() // 1000) % span  # spread concurrent test runs apart
    for step in range(span):
        candidate = start + (offset + step) % span
        if _free(candidate) and _free(candidate + 10000):
            ports.append(candidate)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"no {count} free cluster ports (with free bus ports) in {start}-{stop - 1}")


class ClusterNode(EmbeddedRedis):
    def _command(self) -> list[str]:
        return [*super()._command(), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000"]


class RedisClusterProc:
    """Three masters (and ``replicas`` replicas of each) serving every slot; ``url`` is the store URL.

    ``appendfsync`` turns AOF on with that policy, for a node killed and restarted on its data
    (``always``: it loses nothing it acknowledged); without it the nodes keep no AOF. ``port_range``
    (start, stop) keeps the node ports in [start, stop), for runs that must stay out of others' ports."""

    def __init__(self, base: Path, masters: int = 3, replicas: int = 0, appendfsync: str | None = None,
                 port_range: tuple[int, int] | None = None) -> None:
        ports = cluster_ports(masters * (1 + replicas), *(port_range or ()))
        self.nodes = [ClusterNode(base / f"node-{p}", port=p, appendonly=appendfsync is not None,
                                  appendfsync=appendfsync or "everysec") for p in ports]
        self.masters, self.replicas = self.nodes[:masters], self.nodes[masters:]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.masters)

    def start(self) -> RedisClusterProc:
        try:
            for node in self.nodes:
                node.start()
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        clients = [redis.Redis(port=n.port) for n in self.nodes]
        per = SLOTS // len(self.masters)
        for i, client in enumerate(clients[:len(self.masters)]):
            last = SLOTS - 1 if i == len(self.masters) - 1 else (i + 1) * per - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait(clients, lambda c: len(c.execute_command("CLUSTER", "NODES").splitlines()) == len(self.nodes))
        ids = [c.execute_command("CLUSTER", "MYID") for c in clients[:len(self.masters)]]
        for k, client in enumerate(clients[len(self.masters):]):
            client.execute_command("CLUSTER", "REPLICATE", ids[k % len(self.masters)])
        self._wait(clients, lambda c: b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO"))
        for client in clients:
            client.close()

    @staticmethod
    def _wait(clients: list[redis.Redis], ready: object, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not all(ready(c) for c in clients):  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise RuntimeError("the test cluster did not form in time")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterProc:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


__all__ = ["RedisClusterProc", "cluster_ports"]
