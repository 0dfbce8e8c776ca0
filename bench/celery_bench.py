"""The Celery peers on the same workloads: ``celery`` (no result backend) and ``celery-rb`` (Redis result
backend), each a real ``celery worker`` (prefork, 2 processes) on the benchmark's Redis.

A workflow of ours maps to a Celery canvas: (a) 200 chains of 10 no-op tasks, (b) one chain of 200
tasks, (c) a chord of 1,000 tasks (backend only: a chord needs one), (e) ``delay()`` calls.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import chain, chord, group

from .celery_app import make_app, queue_for
from .census import take_census
from .common import (
    BenchEnv,
    CpuMeter,
    CpuUse,
    Row,
    Workers,
    f_rows,
    gaps_ms,
    percentile,
    python_cmd,
    settle,
    wait_until,
)

SYSTEMS = {"celery": "raw", "celery-rb": "backend"}
TIMEOUT = 600.0


class CeleryBench:
    def __init__(self, env: BenchEnv, system: str) -> None:
        self.env = env
        self.system = system
        self.mode = SYSTEMS[system]
        self.cpu_use = CpuUse()
        self.app = make_app(self.mode, env.redis_url)
        self.noop, self.stamp, self.done = (self.app.tasks[f"bench.{n}"] for n in ("noop", "stamp", "done"))
        self.nodes = [f"{system}-{i}@" for i in range(env.pools)]  # one Celery node name per pool
        self.workers = Workers(
            f"{system}-worker",
            [python_cmd("-m", "celery", "-A", "bench.celery_app:app", "worker", "-c", str(env.concurrency),
                        "-P", "prefork", "-Q", queue_for(self.mode), "-l", "WARNING", "--without-gossip",
                        "--without-mingle", f"--hostname={node}%h") for node in self.nodes],
            {"REDIS_URL": env.redis_url, "BENCH_CELERY_MODE": self.mode},
            env.work_dir,
        )

    def _all_answer(self) -> bool:
        """Every one of this run's Celery nodes answers a remote-control ping (it consumes now)."""
        answered = {name for reply in self.app.control.ping(timeout=0.5) for name in reply}
        return all(any(name.startswith(node) for name in answered) for node in self.nodes)

    def _key(self, what: str) -> str:
        return f"bench:{self.system}:{what}:{uuid.uuid4().hex[:8]}"

    def _count(self, key: str) -> int:
        return int(self.env.meter.probe(lambda r: r.get(key)) or 0)

    def _chains(self, n: int, k: int) -> tuple[float, int]:
        """Start ``n`` chains of ``k`` tasks at once (the last one counts); (seconds, tasks)."""
        key = self._key("chains")
        t0 = time.perf_counter()
        for _ in range(n):
            chain(*([self.noop.si()] * (k - 1)), self.done.si(key=key)).apply_async()
        wait_until(lambda: self._count(key) >= n, TIMEOUT, f"{n} chains of {k}")
        self.env.meter.discount(n)  # the counter bumps are instrumentation
        return time.perf_counter() - t0, n * k

    def _metered(self, steps: int, body: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
        if not self.env.wants("f"):
            return body(), {}
        self.env.meter.start()
        out = body()
        settle()
        return out, self.env.meter.stop(steps)

    def run(self) -> list[Row]:
        self.workers.start()
        try:
            if self.env.pools > 1:  # one node consumes once the warm-up ran; several must all be up first
                wait_until(self._all_answer, 60, "every Celery worker to answer a ping", interval=0.2)
            # warm-up: every worker process up and consuming
            self._chains(2 * self.env.pools * self.env.concurrency, 2)
            return self._workloads()
        finally:
            self.workers.stop()

    def _workloads(self) -> list[Row]:
        env, rows = self.env, []
        for workload, measure in (("a", self._a), ("b", self._b), ("c", self._c), ("e", self._e)):
            if env.wants(workload):
                rows += measure()
        if env.wants("f") and env.census:
            k = env.sizes.a_steps
            census = take_census(env.redis_url, env.meter.redis, lambda: self._chains(env.sizes.rt_workflows, k)[1])
            rows.append(Row("f", self.system, "round trips/step", census["round_trips_per_step"], "", "lower",
                            extra=census))
        return rows

    def _a(self) -> list[Row]:
        env, system = self.env, self.system
        n, k = env.sizes.a_workflows, env.sizes.a_steps
        cpu = CpuMeter(self.workers.cpu_seconds, env.meter.server_cpu_seconds)

        def chains() -> tuple[float, int]:
            cpu.start()
            out = self._chains(n, k)
            self.cpu_use = cpu.stop()
            return out

        (secs, tasks), f = self._metered(n * k, chains)
        rows = [Row("a", system, "activity steps/s", tasks / secs, "steps/s", "higher",
                    extra={"seconds": secs, "chains": n, "tasks_each": k, **self.cpu_use.extra()})]
        if env.wants("f"):
            rows += f_rows(system, "a", f) + self.cpu_use.rows(system, n * k)
        return rows

    def _b(self) -> list[Row]:
        env, system = self.env, self.system
        n = env.sizes.b_steps
        key = self._key("stamps")

        def body() -> float:
            t0 = time.perf_counter()
            chain(*[self.stamp.si(key) for _ in range(n)]).apply_async()
            wait_until(lambda: env.meter.probe(lambda r: r.llen(key)) >= n, TIMEOUT, f"a chain of {n}")
            env.meter.discount(n)  # the stamps' RPUSHes are instrumentation
            return time.perf_counter() - t0

        secs, f = self._metered(n, body)
        stamps = [float(v) for v in env.meter.probe(lambda r: r.lrange(key, 0, -1))]
        gaps = gaps_ms(stamps)
        rows = [Row("b", system, "ms/step p50", percentile(gaps, 50), "ms", "lower",
                    extra={"seconds": secs, "steps": n, "mean_ms": sum(gaps) / len(gaps)}),
                Row("b", system, "ms/step p99", percentile(gaps, 99), "ms", "lower")]
        if env.wants("f"):
            rows += f_rows(system, "b", f)
        return rows

    def _c(self) -> list[Row]:
        if self.mode != "backend":
            return []
        env, system = self.env, self.system
        n = env.sizes.c_fanout
        key = self._key("chord")

        def chord_body() -> float:
            t0 = time.perf_counter()
            chord(group(self.noop.si() for _ in range(n)))(self.done.s(key=key))
            wait_until(lambda: self._count(key) >= 1, TIMEOUT, f"a chord of {n}")
            env.meter.discount(1)
            return time.perf_counter() - t0

        secs, f = self._metered(n, chord_body)
        rows = [Row("c", system, "fan-out/in s", secs, "s", "lower", extra={"tasks": n})]
        if env.wants("f"):
            rows += f_rows(system, "c", f)
        return rows

    def _e(self) -> list[Row]:
        n = self.env.sizes.e_starts
        key = self._key("starts")
        t0 = time.perf_counter()
        for _ in range(n):
            self.done.apply_async(kwargs={"key": key})
        secs = time.perf_counter() - t0
        wait_until(lambda: self._count(key) >= n, TIMEOUT, "the started tasks")
        return [Row("e", self.system, "starts/s", n / secs, "starts/s", "higher", extra={"starts": n})]


def run(env: BenchEnv, system: str) -> list[Row]:
    return CeleryBench(env, system).run()
