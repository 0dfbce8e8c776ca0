"""A private Redis Cluster for tests: three masters (optionally a replica each), own ports and temp dir.

Every node is a ``redis-server --cluster-enabled yes`` on 127.0.0.1. The cluster bus listens on
port + 10000, so node ports are picked below 55535 with both the port and its bus port free. Slots
are assigned and nodes introduced with redis-py (``CLUSTER ADDSLOTSRANGE`` / ``CLUSTER MEET``), so
no ``redis-cli`` is needed. ``ORCH_TEST_PORTS`` (``low-high``) keeps every port a test picks here
in that range, for runs that share a machine.

``move_slot`` reshards a live cluster the way ``redis-cli --cluster reshard`` does: the slot is
marked IMPORTING on the target and MIGRATING on its owner, its keys are MIGRATEd in batches, then
every master is told its new owner. Meanwhile clients meet ASK redirects and, for a multi-key
command whose keys are split between the two nodes, TRYAGAIN.
"""

from __future__ import annotations

import os
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


def _port_range() -> tuple[int, int]:
    """[start, stop) of the ports tests may pick: ``ORCH_TEST_PORTS`` (``low-high``), else 30000-55534."""
    low, _, high = os.environ.get("ORCH_TEST_PORTS", "").partition("-")
    if low.isdigit() and high.isdigit():
        return int(low), min(int(high) + 1, _MAX_PORT)
    return 30000, _MAX_PORT


def cluster_ports(count: int, start: int | None = None, stop: int | None = None) -> list[int]:
    """``count`` ports in [start, stop) (below 55535; default: ``_port_range``) whose bus ports
    (+10000) are free too."""
    default_start, default_stop = _port_range()
    start = default_start if start is None else start
    stop = min(default_stop if stop is None else stop, _MAX_PORT)
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


def spare_port() -> int:
    """One free port for a helper server (a broker) in the range ``cluster_ports`` picks from."""
    return cluster_ports(1)[0]


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

    def owner(self, slot: int) -> EmbeddedRedis:
        """The master that serves ``slot``, as the first master's view of the cluster says."""
        client = redis.Redis(port=self.masters[0].port)
        try:
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == int(master[1]))
        finally:
            client.close()
        raise LookupError(f"no master serves slot {slot}")

    def move_slot(self, slot: int, to_node: EmbeddedRedis, batch: int = 10, pause: float = 0.0) -> int:
        """Reshard ``slot`` onto the master ``to_node`` while clients keep using it; how many keys moved.

        ``batch`` keys go in each MIGRATE, ``pause`` seconds apart (a big slot takes that long)."""
        source = self.owner(slot)
        if source is to_node:
            return 0
        src, dst = redis.Redis(port=source.port), redis.Redis(port=to_node.port)
        try:
            src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            moved = 0
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
                src.execute_command("MIGRATE", "127.0.0.1", to_node.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
                if pause:
                    time.sleep(pause)
            # The target first, so that the slot is never owned by no one; then its old owner, then the rest.
            others = [m for m in self.masters if m not in (source, to_node)]
            for node in (to_node, source, *others):
                client = redis.Redis(port=node.port)
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
                client.close()
            return moved
        finally:
            src.close()
            dst.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterProc:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


__all__ = ["RedisClusterProc", "cluster_ports", "spare_port"]
