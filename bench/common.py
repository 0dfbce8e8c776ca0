"""What every system's benchmark shares: result rows, sizes, worker processes and Redis counters.

Each system runs its workloads against real worker processes (2 per system, as in production); this
module starts and stops them, waits for conditions, and turns ``INFO`` snapshots of the one private
Redis into per-step command and memory figures.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2  # worker processes per system, the same for everyone


def port_range(spec: str) -> tuple[int, int]:
    """``LO-HI`` (inclusive) as the (start, stop) half-open range the port pickers take."""
    lo, sep, hi = spec.partition("-")
    if not sep or not lo.strip().isdigit() or not hi.strip().isdigit() or not 0 < int(lo) <= int(hi) < 65536:
        raise ValueError(f"a port range is LO-HI, e.g. 42000-42999, got {spec!r}")
    return int(lo), int(hi) + 1


def free_port_in(ports: tuple[int, int]) -> int:
    """A port of ``ports`` (start, stop) that is free now, searched from a time-spread offset so that
    concurrent runs sharing the range rarely pick the same one (the port is released on return)."""
    start, stop = ports
    offset = time.monotonic_ns() // 1000
    for step in range(stop - start):
        port = start + (offset + step) % (stop - start)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {start}-{stop - 1}")


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; ``full`` is what the issue specifies, the others keep runs short."""

    name: str
    a_workflows: int
    a_steps: int
    b_steps: int
    c_fanout: int
    d_history: tuple[int, ...]
    d_timed_steps: int
    e_starts: int
    rt_workflows: int  # round-trip census (MONITOR): a small run of workload (a)'s shape
    g_fanout: int = 200  # (g) flow control: a fan-out of a concurrency-limited activity
    scale_workflows: int = 100  # --scaling: workload (a) with this many chains of a_steps each

    @classmethod
    def named(cls, name: str) -> Sizes:
        presets = {
            "full": cls("full", 200, 10, 200, 1000, (10, 1000, 10000), 20, 1000, 20, g_fanout=1000,
                        scale_workflows=600),
            "quick": cls("quick", 40, 10, 50, 200, (10, 300, 1000), 10, 200, 5, g_fanout=200,
                         scale_workflows=300),
            "tiny": cls("tiny", 5, 3, 5, 10, (10, 60), 3, 10, 2, g_fanout=10, scale_workflows=5),
        }
        if name not in presets:
            raise ValueError(f"unknown size preset {name!r}; choose one of {', '.join(presets)}")
        return presets[name]


@dataclass
class Row:
    """One measured figure (or the reason it was not measured)."""

    workload: str  # a..g
    system: str
    metric: str
    value: float | None = None
    unit: str = ""
    better: str = "higher"  # or "lower"
    skipped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Skip(Exception):
    """Raised by a system's setup when it cannot run here (a missing package, no database)."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def gaps_ms(stamps: list[float]) -> list[float]:
    """Milliseconds between consecutive timestamps (seconds): the cost of each sequential step."""
    return [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    delay = interval
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)


class Workers:
    """A worker process group (a Celery prefork pool, or N DBOS processes), in its own session so it
    can be stopped as a whole. Output goes to a log file, shown when the workers fail to start."""

    def __init__(self, name: str, commands: list[list[str]], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.commands = commands
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log_path = log_dir / f"{name}.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, ready: Callable[[], bool] | None = None, marker: bytes | None = None,
              timeout: float = 60) -> Workers:
        log = open(self.log_path, "ab")
        offset = log.tell()  # a repeated run appends: only this start's output counts
        for cmd in self.commands:
            self.procs.append(subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))
        log.close()

        def up() -> bool:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {p.returncode}:\n{self.log_tail()}")
            if marker is not None and self.log_path.read_bytes()[offset:].count(marker) < len(self.procs):
                return False
            return ready() if ready is not None else True

        try:
            wait_until(up, timeout, f"{self.name} to start", interval=0.05)
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"{self.name} did not start:\n{self.log_tail()}") from None
        return self

    def pids(self) -> list[int]:
        """Every process of the group (parents and pool children), for profilers."""
        out = subprocess.run(["ps", "-e", "-o", "pid=,sid="], capture_output=True, text=True).stdout
        sids = {p.pid for p in self.procs}
        return [int(pid) for pid, sid in (line.split() for line in out.splitlines()) if int(sid) in sids]

    def cpu_seconds(self) -> float:
        """CPU time used so far by the whole group (see ``process_cpu_seconds``)."""
        return process_cpu_seconds(self.pids())

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        self.procs = []

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (and of their reaped children), from /proc. Unlike wall
    time, CPU per step hardly moves when other work shares the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / tick


def postgres_pids() -> list[int]:
    out = subprocess.run(["ps", "-C", "postgres", "-o", "pid="], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@dataclass
class CpuUse:
    """CPU seconds the workers and the store used while a ``measure_cpu`` block ran."""

    workers: float = 0.0
    store: float | None = None
    busy_cores: float | None = None  # the whole machine's average busy cores (other jobs included)

    def extra(self) -> dict[str, float | None]:
        """For (a)'s row: how much CPU the run had, so a throughput figure can be read against it."""
        return {"worker_cpu_s": self.workers, "store_cpu_s": self.store, "machine_busy_cores": self.busy_cores}

    def rows(self, system: str, steps: int) -> list[Row]:
        """Workload (f) rows: CPU per completed step during (a)."""
        rows = [Row("f", system, "worker CPU ms/step [a]", self.workers * 1000 / steps, "ms", "lower")]
        if self.store is not None:
            rows.append(Row("f", system, "store CPU ms/step [a]", self.store * 1000 / steps, "ms", "lower"))
        return rows


class CpuMeter:
    """Measures ``CpuUse`` between ``start()`` and ``stop()``; ``store`` is None when the store runs
    inside the worker processes (SQLite)."""

    def __init__(self, workers: Callable[[], float], store: Callable[[], float] | None = None) -> None:
        self.workers, self.store = workers, store
        self._w0, self._s0 = 0.0, 0.0
        self._m0: tuple[int, int] | None = None

    def start(self) -> None:
        self._w0 = self.workers()
        self._s0 = self.store() if self.store else 0.0
        self._m0 = machine_jiffies()

    def stop(self) -> CpuUse:
        m1, busy = machine_jiffies(), None
        if self._m0 is not None and m1 is not None and m1[1] > self._m0[1]:
            busy = (m1[0] - self._m0[0]) / (m1[1] - self._m0[1]) * (os.cpu_count() or 1)
        return CpuUse(self.workers() - self._w0, self.store() - self._s0 if self.store else None, busy)


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far (/proc/stat; None elsewhere)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    total = sum(ticks[:8])  # guest time is already inside user time
    return total - idle, total


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]


class RedisMeter:
    """Per-workload Redis figures: commands executed (``INFO commandstats``, which counts those inside
    Lua scripts too), ``used_memory`` growth, and growth of the bytes held by keys. The meter's own probe
    commands are counted and subtracted, so polling for completion does not inflate the figures."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.probes = 0
        self._before: dict[str, Any] = {}
        self._keys_before = 0

    def probe(self, fn: Callable[[redis.Redis], Any]) -> Any:
        """Run one Redis command on behalf of the benchmark (not of the system under test)."""
        self.probes += 1
        return fn(self.redis)

    def server_cpu_seconds(self) -> float:
        """CPU seconds the Redis server has used (all its threads)."""
        cpu = self.redis.info("cpu")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    def discount(self, commands: int) -> None:
        """Leave out ``commands`` that the benchmark's instrumentation made inside a workload."""
        self.probes += commands

    def _snapshot(self) -> dict[str, Any]:
        stats = self.redis.info("commandstats")
        calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
        usec = {k.removeprefix("cmdstat_"): v["usec"] for k, v in stats.items() if k != "cmdstat_info"}
        return {"calls": calls, "usec": usec, "memory": self.redis.info("memory")["used_memory"],
                "probes": self.probes}

    def keyspace_bytes(self) -> int:
        """Exact bytes held by all keys (``MEMORY USAGE ... SAMPLES 0``): unlike ``used_memory`` it is
        not moved by client buffers or the AOF buffer, so small runs give stable figures too."""
        total, batch = 0, []
        for key in self.redis.scan_iter(count=1000):
            batch.append(key)
            if len(batch) >= 500:
                total += self._usage(batch)
                batch = []
        return total + (self._usage(batch) if batch else 0)

    def _usage(self, keys: list[bytes]) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return sum(v or 0 for v in pipe.execute())

    def start(self) -> None:
        self._keys_before = self.keyspace_bytes()
        self._before = self._snapshot()

    def stop(self, steps: int) -> dict[str, Any]:
        """Figures since ``start()``, per completed activity step."""
        after = self._snapshot()
        keys_after = self.keyspace_bytes()
        before = self._before
        names = set(after["calls"]) | set(before["calls"])
        delta = {n: after["calls"].get(n, 0) - before["calls"].get(n, 0) for n in names}
        delta.pop("info", None)
        probes = after["probes"] - before["probes"]
        total = sum(delta.values()) - probes
        top = dict(sorted(((n, v) for n, v in delta.items() if v > 0), key=lambda kv: -kv[1])[:12])
        steps = max(steps, 1)
        # Redis CPU per step by command; a script's time includes the commands it runs, so the
        # total counts only top-level commands (the script names plus everything sent directly).
        usec = {n: after["usec"].get(n, 0) - before["usec"].get(n, 0) for n in after["usec"]}
        top_usec = dict(
            sorted(((n, round(v / steps, 1)) for n, v in usec.items() if v > 0), key=lambda kv: -kv[1])[:12]
        )
        return {
            "commands": total,
            "commands_per_step": total / steps,
            "redis_usec_per_step_by_command": top_usec,
            "memory_bytes": after["memory"] - before["memory"],
            "memory_per_step": (after["memory"] - before["memory"]) / steps,
            "key_bytes": keys_after - self._keys_before,
            "key_bytes_per_step": (keys_after - self._keys_before) / steps,
            "top_commands": top,
        }


class NodesMeter(RedisMeter):
    """A ``RedisMeter`` over several servers (a cluster's masters and the broker): figures summed."""

    def __init__(self, client: redis.Redis, others: list[redis.Redis]) -> None:
        super().__init__(client)
        self.nodes = [client, *others]

    def server_cpu_seconds(self) -> float:
        return sum(float(c.info("cpu")["used_cpu_sys"]) + float(c.info("cpu")["used_cpu_user"]) for c in self.nodes)

    def _snapshot(self) -> dict[str, Any]:
        calls: dict[str, int] = {}
        usec: dict[str, int] = {}
        memory = 0
        for client in self.nodes:
            for k, v in client.info("commandstats").items():
                name = k.removeprefix("cmdstat_")
                calls[name] = calls.get(name, 0) + v["calls"]
                if name != "info":
                    usec[name] = usec.get(name, 0) + v["usec"]
            memory += client.info("memory")["used_memory"]
        return {"calls": calls, "usec": usec, "memory": memory, "probes": self.probes}

    def keyspace_bytes(self) -> int:
        total = 0
        for client in self.nodes:
            batch: list[bytes] = []
            for key in client.scan_iter(count=1000):
                batch.append(key)
            for i in range(0, len(batch), 500):
                pipe = client.pipeline(transaction=False)
                for key in batch[i:i + 500]:
                    pipe.memory_usage(key, samples=0)
                total += sum(v or 0 for v in pipe.execute())
        return total


def settle(quiet_for: float = 0.3) -> None:
    """Wait until background writes after a workload's end (acks, outbox cleanup) have landed."""
    time.sleep(quiet_for)


@dataclass
class BenchEnv:
    """What a system's benchmark gets from the runner."""

    redis_url: str
    sizes: Sizes
    workloads: set[str]
    work_dir: Path
    meter: RedisMeter
    profile_dir: Path | None = None
    census: bool = True
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    store: str = ""  # our store's URL when it is not redis_url (--store cluster)
    broker_url: str | None = None  # our broker then: redis_url, where raw Celery runs too
    pools: int = 1  # worker commands (pools) per system; --scaling varies it
    concurrency: int = WORKERS  # prefork processes of each pool

    @property
    def store_url(self) -> str:
        return self.store or self.redis_url

    def wants(self, workload: str) -> bool:
        return workload in self.workloads


def f_rows(system: str, workload: str, f: dict[str, Any]) -> list[Row]:
    """Workload (f) figures measured around another workload: Redis commands and memory per step."""
    return [
        Row("f", system, f"cmds/step [{workload}]", f["commands_per_step"], "cmds", "lower", extra=f),
        Row("f", system, f"bytes/step [{workload}]", f["memory_per_step"], "B", "lower"),
        Row("f", system, f"key bytes/step [{workload}]", f["key_bytes_per_step"], "B", "lower"),
    ]
