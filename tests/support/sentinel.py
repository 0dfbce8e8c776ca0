"""A private Sentinel-managed Redis for tests: a master, its replica and one Sentinel watching them.

The Sentinel names the pair ``mymaster`` (quorum 1, the master called down after 1 s), so killing
the master gets the replica promoted within a few seconds. ``url`` is the engine's store URL for it,
``broker_url`` and ``BROKER_OPTIONS`` the Celery broker URL and transport options.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import redis
import redis.sentinel

from orchestrator.embedded import EmbeddedRedis, find_redis_server, free_port
from tests.support.waiting import wait_until

SERVICE = "mymaster"
BROKER_OPTIONS = {"master_name": SERVICE}  # kombu's Sentinel transport finds the master by this name


class Sentinel:
    """A master, its replica and one Sentinel watching them as ``mymaster`` (quorum 1)."""

    def __init__(self, tmp: Path) -> None:
        self.master = EmbeddedRedis(tmp / "master").start()
        self.replica = EmbeddedRedis(tmp / "replica")
        self.replica.start()
        redis.Redis(port=self.master.port).config_set("repl-diskless-sync-delay", 0)  # sync now, not in 5 s
        replica = redis.Redis(port=self.replica.port)
        replica.replicaof("127.0.0.1", self.master.port)
        wait_until(lambda: replica.info("replication").get("master_link_status") == "up",
                   what="the replica to sync")
        self.port = free_port()
        conf = tmp / "sentinel.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {tmp}\n"
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 1\n"
                        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                        f"sentinel failover-timeout {SERVICE} 5000\n")
        self.proc = subprocess.Popen([find_redis_server(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: self._replicas() >= 1, what="the sentinel to see the replica")

    def _replicas(self) -> int:
        try:
            return len(redis.Redis(port=self.port).sentinel_slaves(SERVICE))
        except redis.exceptions.RedisError:
            return 0

    def master_port(self) -> int:
        return int(redis.Redis(port=self.port).sentinel_get_master_addr_by_name(SERVICE)[1])

    def kill_master_in_sync(self) -> int:
        """SIGKILL the master once its replica holds every write (returns the old master's port).

        The master stops taking writes first (``CLIENT PAUSE WRITE``), so nothing written after the
        check can be lost with it, as a ``WAIT`` alone would allow while clients keep writing."""
        old = self.master_port()
        master, replica = redis.Redis(port=old), redis.Redis(port=self.replica.port)
        master.execute_command("CLIENT", "PAUSE", 30000, "WRITE")
        offset = master.info("replication")["master_repl_offset"]
        wait_until(lambda: replica.info("replication").get("slave_repl_offset", -1) >= offset,
                   what="the replica to hold every write")
        self.master.kill()
        return old

    def discovered_port(self) -> int | None:
        """The master's port as a client finds it (redis-py checks the master is up), else None."""
        finder = redis.sentinel.Sentinel([("127.0.0.1", self.port)], socket_timeout=1)
        try:
            return int(finder.discover_master(SERVICE)[1])
        except redis.exceptions.ConnectionError:  # MasterNotFoundError: none, or not usable yet
            return None
        finally:
            finder.close()

    @property
    def url(self) -> str:
        """The store URL (``redis+sentinel://``) of the master the Sentinel names."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{SERVICE}/0"

    @property
    def broker_url(self) -> str:
        """The Celery broker URL (kombu's ``sentinel://``); goes with ``BROKER_OPTIONS``."""
        return f"sentinel://127.0.0.1:{self.port}"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.master.stop()
        self.replica.stop()


__all__ = ["BROKER_OPTIONS", "SERVICE", "Sentinel"]
