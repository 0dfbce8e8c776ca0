"""The monkeys: SIGKILL worker pools and restart them; crash, restart and take away Redis.

Both run as threads next to the driver. The pool monkey kills one random pool's whole process group
(Celery parent and every child, as a machine crash would) every ``kill_every`` seconds and starts a
fresh pool in its place at once. The Redis monkey SIGKILLs the server at the planned moments and
starts it again on the same port and data directory; with ``appendfsync always`` nothing it
acknowledged is lost. An outage keeps it down for ``outage`` seconds first. Given several servers
(a cluster's masters), crash k hits server k mod their number.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from tests.chaos.resume import victims
from tests.conftest import Pool
from tests.support.redis_proc import EmbeddedRedis

MODULE = "tests.chaos.app"


class PoolSet:
    """The worker pools of the run; each restart gets a fresh log so its own "ready." is seen."""

    def __init__(self, url: str, count: int, concurrency: int, log_dir: Path, env: dict[str, str]) -> None:
        self.url, self.concurrency, self.log_dir, self.env = url, concurrency, log_dir, env
        self.started = 0
        self.pools: list[Pool] = [self._new() for _ in range(count)]
        self._lock = threading.Lock()
        self.kills: list[tuple[int, set[str]]] = []  # (killed at ms, instances whose claimed work it held)

    def _new(self) -> Pool:
        self.started += 1
        log = self.log_dir / f"pool-{self.started:03d}.log"
        return Pool(MODULE, self.url, "default", self.concurrency, log, self.env).start()

    def wait_ready(self, timeout: float = 60) -> None:
        for pool in self.pools:
            pool.wait_ready(timeout)

    def exited(self) -> list[str]:
        """Logs of pools whose process exited on its own (a pool must survive Redis going away)."""
        return [p.log_path.name for p in self.pools if p.proc is not None and p.proc.poll() is not None]

    @staticmethod
    def is_ready(pool: Pool) -> bool:
        return pool.log_path.exists() and b"ready." in pool.log_path.read_bytes()

    def kill_one(self, rng: random.Random) -> int:
        """SIGKILL a random pool (one that finished starting, if any) and start its replacement."""
        with self._lock:
            ready = [i for i, pool in enumerate(self.pools) if self.is_ready(pool)]
            index = rng.choice(ready or list(range(len(self.pools))))
            proc = self.pools[index].proc
            held = victims(self.url, proc.pid)[1] if proc is not None else set()
            self.pools[index].kill()
            self.kills.append((int(time.time() * 1000), held))  # timed once it is dead
            self.pools[index] = self._new()
            return index

    def stop(self) -> None:
        with self._lock:
            for pool in self.pools:
                pool.kill()

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(f"--- {pool.log_path.name}\n{pool.log_tail(lines)}" for pool in self.pools)


class PoolMonkey(threading.Thread):
    def __init__(self, pools: PoolSet, every: float, rng: random.Random) -> None:
        super().__init__(name="pool-monkey", daemon=True)
        self.pools, self.every, self.rng = pools, every, rng
        self.kills = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.pools.kill_one(self.rng)
            self.kills += 1

    def stop(self) -> None:
        self.stopped.set()
        self.join(30)


class RedisMonkey(threading.Thread):
    """At each planned offset (seconds from start): a crash + restart, or a crash + outage + restart."""

    def __init__(self, servers: list[EmbeddedRedis], plan: list[tuple[float, str]], outage: float) -> None:
        super().__init__(name="redis-monkey", daemon=True)
        self.servers, self.plan, self.outage = servers, sorted(plan), outage
        self.restarts = 0
        self.outages = 0
        self.down_seconds = 0.0
        self.stopped = threading.Event()
        self.began = time.monotonic()

    def run(self) -> None:
        for k, (offset, action) in enumerate(self.plan):
            if self.stopped.wait(max(0.0, self.began + offset - time.monotonic())):
                return
            server = self.servers[k % len(self.servers)]
            went = time.monotonic()
            server.kill()  # SIGKILL: no chance to flush anything but what fsync already wrote
            if action == "outage":
                time.sleep(self.outage)
            server.start()
            self.down_seconds += time.monotonic() - went
            if action == "outage":
                self.outages += 1
            else:
                self.restarts += 1

    def stop(self) -> None:
        self.stopped.set()
        self.join(self.outage + 30)


def redis_plan(restarts: int, outage: float, window: float) -> list[tuple[float, str]]:
    """Spread the restarts (and the outage, last) evenly over the busy part of the run."""
    actions = ["restart"] * restarts + (["outage"] if outage > 0 else [])
    return [(window * (k + 1) / (len(actions) + 1), action) for k, action in enumerate(actions)]
