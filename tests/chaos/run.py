"""The chaos driver: a mixed workload under worker kills, Redis crashes and a Redis outage.

    python -m tests.chaos.run --workflows 1000 --kill-every 2 --redis-restarts 2 --outage 30   # long
    python -m tests.chaos.run                                                                  # short (CI's)

One private ``redis-server`` (AOF, ``appendfsync always``, never port 6379), or with ``--store
cluster`` a private 3-master Redis Cluster and a separate broker Redis (tests/chaos/stack.py), and
two real worker pools (``orchestrator worker tests.chaos.app``). The driver starts the workflows spread over a window,
raises each event workflow's ``go`` event twice under one idempotency key, and retries every call
that meets Redis down (an idempotency key, or an explicit instance id, makes a retry harmless).
Meanwhile the pool monkey SIGKILLs a random pool every ``kill_every`` seconds and restarts it, and
the Redis monkey crashes Redis (SIGKILL + restart on the same port and data; on a cluster, one
master) and takes it away for ``outage`` seconds. When every instance has finished, ``verify`` checks the end state and the run
prints one summary line. It exits 1 (the test fails) on any problem.
"""

from __future__ import annotations

import argparse
import heapq
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kombu.exceptions

from orchestrator import InstanceAlreadyExistsError, WorkflowClient
from orchestrator.store.connection import STORE_RETRYABLE
from tests.support.store_keys import index_total

from . import app
from .monkey import PoolMonkey, PoolSet, RedisMonkey, redis_plan
from .resume import percentile, resume_times
from .stack import STORES, Stack
from .verify import Verdict, leftovers_drained, verify

T = TypeVar("T")
# Redis (store or broker) unreachable or still loading, a cluster without one of its masters.
TRANSIENT = (*STORE_RETRYABLE, kombu.exceptions.OperationalError)


@dataclass
class Scenario:
    workflows: int = 200
    kill_every: float = 3.0
    redis_restarts: int = 1
    outage: float = 0.0
    pools: int = 2
    concurrency: int = 2
    window: float | None = None  # seconds over which starts are spread (default: 0.1 s per workflow, >= 20 s)
    timeout: float = 900.0
    seed: int = 7
    store: str = "standalone"  # or "cluster" (tests/chaos/stack.py)

    @property
    def start_window(self) -> float:
        return self.window if self.window is not None else max(20.0, self.workflows * 0.1)


@dataclass
class Report:
    scenario: Scenario
    verdict: Verdict
    kills: int
    redis_restarts: int
    outages: int
    redis_down_s: float
    retried_calls: int
    duration: float
    resume_s: list[float] = field(default_factory=list)  # kill-to-resume time of each victim (tests/chaos/resume.py)

    @property
    def ok(self) -> bool:
        return not self.verdict.problems

    def summary(self) -> str:
        v = self.verdict
        return (f"chaos: {'PASSED' if self.ok else 'FAILED'} workflows={self.scenario.workflows} "
                f"completed={v.completed} lost={v.lost} double_commits={v.double_commits} instances={v.instances} "
                f"kills={self.kills} redis_restarts={self.redis_restarts} outages={self.outages} "
                f"redis_down={self.redis_down_s:.1f}s activity_attempts={v.activity_attempts} "
                f"executions={v.executions} duplicates_executed={v.duplicate_executions} steps={v.steps} "
                f"driver_retries={self.retried_calls} problems={len(v.problems)} duration={self.duration:.1f}s "
                f"kill_to_resume_p50={percentile(self.resume_s, 0.5):.1f}s "
                f"p99={percentile(self.resume_s, 0.99):.1f}s victims={len(self.resume_s)}")


class Driver:
    def __init__(self, scenario: Scenario, workdir: Path, log: Callable[[str], None] = print) -> None:
        self.s, self.workdir, self.log = scenario, workdir, log
        self.rng = random.Random(scenario.seed)
        self.stack = Stack(scenario.store, workdir)
        self.expected: dict[str, Any] = {}
        self.event_ids: set[str] = set()
        self.retries = 0
        self._events: list[tuple[float, str, int]] = []  # (due, instance id, workload index)
        self._lock = threading.Lock()
        self.starting_done = threading.Event()
        self.errors: list[BaseException] = []

    # -- calls that may meet Redis down ----------------------------------------------------------
    def persist(self, what: str, call: Callable[[], T], deadline: float) -> T:
        """Retry ``call`` while Redis (store or broker) is unreachable."""
        while True:
            try:
                return call()
            except TRANSIENT as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what}: Redis still unreachable: {exc}") from exc
                with self._lock:
                    self.retries += 1
                time.sleep(0.25)

    def start_one(self, client: WorkflowClient, i: int, deadline: float) -> None:
        kind = app.PATTERN[i % len(app.PATTERN)]
        instance_id = f"chaos-{i:05d}-{kind}"
        tried = [0]

        def start() -> None:
            tried[0] += 1
            try:
                client.schedule_new_workflow(app.WORKFLOWS[kind], input=app.workload_input(kind, i),
                                             instance_id=instance_id)
            except InstanceAlreadyExistsError:
                # An earlier attempt was stored but its reply lost (Redis died mid-call): that start stands.
                if tried[0] == 1:
                    raise

        self.persist(f"start {instance_id}", start, deadline)
        self.expected[instance_id] = app.expected(kind, i)
        if kind == "event":
            self.event_ids.add(instance_id)
            with self._lock:
                heapq.heappush(self._events, (time.monotonic() + 0.5 + self.rng.random(), instance_id, i))

    def starter(self, client: WorkflowClient, deadline: float) -> None:
        gap = self.s.start_window / max(1, self.s.workflows)
        began = time.monotonic()
        try:
            for i in range(self.s.workflows):
                time.sleep(max(0.0, began + i * gap - time.monotonic()))
                self.start_one(client, i, deadline)
        finally:
            self.starting_done.set()

    def _guarded(self, fn: Callable[..., None], *args: Any) -> Callable[[], None]:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised by run() in the main thread
                self.errors.append(exc)
        return run

    def eventer(self, client: WorkflowClient, deadline: float) -> None:
        """Raises ``go`` twice per event workflow, with the same idempotency key: recorded once."""
        while True:
            with self._lock:
                due = self._events[0] if self._events and self._events[0][0] <= time.monotonic() else None
                if due:
                    heapq.heappop(self._events)
                empty = not self._events
            if due is None:
                if empty and self.starting_done.is_set():
                    return
                time.sleep(0.05)
                continue
            _, instance_id, i = due
            for _ in range(2):
                self.persist(f"raise go to {instance_id}", lambda instance_id=instance_id, i=i: client.raise_workflow_event(
                    instance_id, "go", data=app.event_data(i), idempotency_key=f"go-{instance_id}"), deadline)

    def wait_finished(self, r: Any, total: int, deadline: float) -> None:
        done = 0
        while time.monotonic() < deadline:
            try:
                done = sum(index_total(r, s) for s in ("COMPLETED", "FAILED", "TERMINATED"))
            except TRANSIENT:
                done = -1
            if done >= total and self.starting_done.is_set():
                return
            time.sleep(0.5)
        raise TimeoutError(f"only {done} of {total} instances finished in time")

    def wait_drained(self, r: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not leftovers_drained(r):
            time.sleep(0.25)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> Report:
        s = self.s
        began = time.monotonic()
        deadline = began + s.timeout
        self.stack.start()
        url = self.stack.url
        (self.workdir / "pools").mkdir(parents=True, exist_ok=True)
        pools = PoolSet(url, s.pools, s.concurrency, self.workdir / "pools", self.stack.pool_env)  # engine defaults
        client = WorkflowClient(settings=self.stack.settings())
        r = self.stack.client()
        pool_monkey: PoolMonkey | None = None
        redis_monkey: RedisMonkey | None = None
        try:
            pools.wait_ready()
            self.log(f"chaos: {self.stack.describe()}, {s.pools} pools x {s.concurrency}; "
                     f"{s.workflows} workflows over {s.start_window:.0f}s, a kill every {s.kill_every}s, "
                     f"{s.redis_restarts} redis restarts, outage {s.outage}s")
            pool_monkey = PoolMonkey(pools, s.kill_every, self.rng)
            redis_monkey = RedisMonkey(self.stack.victims, redis_plan(s.redis_restarts, s.outage, s.start_window), s.outage)
            threads = [threading.Thread(target=self._guarded(self.starter, client, deadline), daemon=True),
                       threading.Thread(target=self._guarded(self.eventer, client, deadline), daemon=True)]
            for t in (pool_monkey, redis_monkey, *threads):
                t.start()
            for t in threads:
                t.join(max(1.0, deadline - time.monotonic()))
            if self.errors:
                raise self.errors[0]
            redis_monkey.join(max(1.0, deadline - time.monotonic()))  # every planned crash happens
            total = s.workflows + sum(app.children(app.PATTERN[i % len(app.PATTERN)], i) for i in range(s.workflows))
            self.wait_finished(r, total, deadline)
            pool_monkey.stop()
            exited = pools.exited()
            if exited:
                raise RuntimeError(f"worker pools exited on their own: {exited}")
            pools.wait_ready()
            self.wait_drained(r, 30)
            verdict = verify(r, self.expected, self.event_ids)
            resumed = resume_times(client, pools.kills)
        except BaseException:
            self.log(pools.log_tails())
            raise
        finally:
            if pool_monkey is not None:
                pool_monkey.stop()
            if redis_monkey is not None:
                redis_monkey.stop()
            pools.stop()
            self.stack.stop()
        report = Report(s, verdict, pool_monkey.kills, redis_monkey.restarts, redis_monkey.outages,
                        redis_monkey.down_seconds, self.retries, time.monotonic() - began, resumed)
        if not report.ok:
            self.log("\n".join(verdict.problems[:40]))
        return report


def run_scenario(scenario: Scenario, workdir: Path | None = None, log: Callable[[str], None] = print) -> Report:
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    return Driver(scenario, workdir, log).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between pool SIGKILLs")
    parser.add_argument("--redis-restarts", type=int, default=1, help="Redis crashes + restarts mid-run")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds Redis stays away (0: no outage)")
    parser.add_argument("--pools", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="processes per pool")
    parser.add_argument("--window", type=float, default=None, help="seconds over which workflows are started")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="where Redis data and pool logs go")
    parser.add_argument("--store", choices=STORES, default="standalone",
                        help="cluster: the store on a 3-master Redis Cluster, the broker apart")
    args = parser.parse_args(argv)
    scenario = Scenario(workflows=args.workflows, kill_every=args.kill_every, redis_restarts=args.redis_restarts,
                        outage=args.outage, pools=args.pools, concurrency=args.concurrency, window=args.window,
                        timeout=args.timeout, seed=args.seed, store=args.store)
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the pools and Redis are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = run_scenario(scenario, args.workdir)
    print(report.summary(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
