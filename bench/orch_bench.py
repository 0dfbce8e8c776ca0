"""Our engine on every workload: a real ``orchestrator worker`` pool (prefork, 2 processes) on the
benchmark's Redis, driven by one ``WorkflowClient``.

Completion is detected by polling the status index through the meter's probe connection, so the
benchmark's own Redis traffic is left out of the per-step figures. Sequential step latency comes
from the ``stamp`` activity's return values (wall time at which each step's activity ran); the
history's ``TaskScheduled`` timestamps give a second, millisecond-resolution view.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator import Settings, WorkflowClient

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
from .profiling import Profiler

SYSTEM = "ours"
APP_ID = "bench"
PREFIX = "orch"
TIMEOUT = 600.0


class OursBench:
    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.cpu_use = CpuUse()
        # The store: the runner's Redis, or with --store cluster a Redis Cluster (the broker apart).
        self.client = WorkflowClient(settings=Settings(redis_url=env.store_url, broker_url=env.broker_url,
                                                       key_prefix=PREFIX))
        self.keys = self.client.store.keys
        broker_env = {"ORCH_BROKER_URL": env.broker_url} if env.broker_url else {}
        pool_cmd = python_cmd("-m", "orchestrator", "worker", "bench.orch_app", "--app-id", APP_ID,
                              "-c", str(env.concurrency), "-l", "WARNING")
        self.pool = Workers("ours-pool", [pool_cmd] * env.pools,
                            {"REDIS_URL": env.store_url, "ORCH_KEY_PREFIX": PREFIX, **broker_env}, env.work_dir)

    # -- helpers --------------------------------------------------------------------------------
    def _all_registered(self) -> bool:
        """Each pool's consumer and every prefork child of this run are in the process registry."""
        pids = set(self.pool.pids())
        mine = [p for p in self.client.store.liveness.processes(app_id=APP_ID) if p.pid in pids]
        return len(mine) >= self.env.pools * (1 + self.env.concurrency)

    def _count(self, status: str) -> int:
        return sum(int(n) for n in self._probe_shards(lambda pipe, shard: pipe.zcard(shard.status_index(status))))

    def _probe_shards(self, queue: Any) -> list[Any]:
        """One pipelined probe over every shard of the store, every command of it discounted."""
        shards = self.keys.shards()

        def run(meter_client: Any) -> list[Any]:
            # The meter's own connection (the census leaves it out), or the cluster's client.
            pipe = (self.client.store.redis if self.env.store else meter_client).pipeline(transaction=False)
            for shard in shards:
                queue(pipe, shard)
            return list(pipe.execute())

        replies = self.env.meter.probe(run)
        self.env.meter.discount(len(shards) - 1)
        return replies

    def _start_many(self, name: str, inputs: list[Any]) -> list[str]:
        return [self.client.schedule_new_workflow(name, input=value) for value in inputs]

    def _wait_finished(self, ids: list[str], baseline: int, what: str) -> None:
        target = baseline + len(ids)

        def done() -> bool:
            if self._count("FAILED"):
                failed = [i for reply in self._probe_shards(
                    lambda pipe, shard: pipe.zrange(shard.status_index("FAILED"), 0, 0)) for i in reply]
                state = self.client.get_workflow_state(failed[0].decode())
                raise RuntimeError(f"{what}: a workflow failed: {state.failure_details if state else '?'}")
            return self._count("COMPLETED") >= target

        wait_until(done, TIMEOUT, what)

    def _run(self, name: str, inputs: list[Any]) -> tuple[float, list[str]]:
        """Start the instances at once and wait for all; (seconds, ids)."""
        baseline = self._count("COMPLETED")
        t0 = time.perf_counter()
        ids = self._start_many(name, inputs)
        self._wait_finished(ids, baseline, f"{len(inputs)} x {name}")
        return time.perf_counter() - t0, ids

    def _metered(self, steps: int, body: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
        if not self.env.wants("f"):
            return body(), {}
        self.env.meter.start()
        out = body()
        settle()
        return out, self.env.meter.stop(steps)

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> list[Row]:
        self.pool.start()
        try:
            wait_until(lambda: self.client.store.workflow_app("bench_chain") == APP_ID, 60, "the pool to register")
            wait_until(self._all_registered, 60, "every pool process to register")
            # warm-up: every pool process connected and imported
            self._run("bench_chain", [2] * (2 * self.env.pools * self.env.concurrency))
            return self._workloads()
        finally:
            self.pool.stop()

    def _workloads(self) -> list[Row]:
        env, sizes, rows = self.env, self.env.sizes, []
        profiler = Profiler(env.profile_dir, self.pool) if env.profile_dir else None
        if env.wants("a"):
            n, k = sizes.a_workflows, sizes.a_steps
            cpu = CpuMeter(self.pool.cpu_seconds, env.meter.server_cpu_seconds)

            def chains() -> tuple[float, list[str]]:
                cpu.start()
                out = self._run("bench_chain", [k] * n)
                self.cpu_use = cpu.stop()
                return out

            with Profiler.maybe(profiler, "ours-a"):
                (secs, _), f = self._metered(n * k, chains)
            rows.append(Row("a", SYSTEM, "activity steps/s", n * k / secs, "steps/s", "higher",
                            extra={"seconds": secs, "workflows": n, "steps_each": k, **self.cpu_use.extra()}))
            if env.wants("f"):
                rows += f_rows(SYSTEM, "a", f) + self.cpu_use.rows(SYSTEM, n * k)
        if env.wants("b"):
            n = sizes.b_steps
            with Profiler.maybe(profiler, "ours-b"):
                (secs, ids), f = self._metered(n, lambda: self._run("bench_stamps", [n]))
            state = self.client.get_workflow_state(ids[0])
            gaps = gaps_ms(state.output if state else [])
            hist = self.client.get_workflow_history(ids[0])
            sched = [e["ts"] for e in hist if e["kind"] == "TaskScheduled"]
            hist_gaps = [float(b - a) for a, b in zip(sched, sched[1:])]
            extra = {"seconds": secs, "steps": n, "mean_ms": sum(gaps) / len(gaps),
                     "history_p50_ms": percentile(hist_gaps, 50), "history_p99_ms": percentile(hist_gaps, 99)}
            rows.append(Row("b", SYSTEM, "ms/step p50", percentile(gaps, 50), "ms", "lower", extra=extra))
            rows.append(Row("b", SYSTEM, "ms/step p99", percentile(gaps, 99), "ms", "lower"))
            if env.wants("f"):
                rows += f_rows(SYSTEM, "b", f)
        if env.wants("c"):
            n = sizes.c_fanout
            with Profiler.maybe(profiler, "ours-c"):
                (secs, _), f = self._metered(n, lambda: self._run("bench_fan", [n]))
            rows.append(Row("c", SYSTEM, "fan-out/in s", secs, "s", "lower", extra={"activities": n}))
            if env.wants("f"):
                rows += f_rows(SYSTEM, "c", f)
        if env.wants("d"):
            rows += self._long_history(profiler)
        if env.wants("e"):
            n = sizes.e_starts
            baseline = self._count("COMPLETED")
            t0 = time.perf_counter()
            ids = self._start_many("bench_empty", list(range(n)))
            secs = time.perf_counter() - t0
            self._wait_finished(ids, baseline, "the started workflows")
            rows.append(Row("e", SYSTEM, "starts/s", n / secs, "starts/s", "higher", extra={"starts": n}))
        if env.wants("g"):
            rows += self._flow_control()
        if env.wants("f") and env.census:
            k = sizes.a_steps
            census = take_census(env.redis_url, env.meter.redis,
                                 lambda: len(self._run("bench_chain", [k] * sizes.rt_workflows)[1]) * k)
            rows.append(Row("f", SYSTEM, "round trips/step", census["round_trips_per_step"], "", "lower",
                            extra=census))
        return rows

    def _flow_control(self) -> list[Row]:
        """(g): the same fan-out unlimited and with its activity behind a concurrency limit (of the
        pool's size, so nothing waits): the per-step cost of the flow-control gate."""
        n = self.env.sizes.g_fanout
        plain, _ = self._run("bench_fan", [n])
        limited, _ = self._run("bench_fan_limited", [n])
        return [Row("g", SYSTEM, "ms/activity unlimited fan-out", plain * 1000 / n, "ms", "lower",
                    extra={"seconds": plain, "activities": n}),
                Row("g", SYSTEM, "ms/activity limited fan-out", limited * 1000 / n, "ms", "lower",
                    extra={"seconds": limited, "activities": n, "concurrency": 2})]

    def _long_history(self, profiler: Profiler | None) -> list[Row]:
        rows = []
        k = self.env.sizes.d_timed_steps
        for length in self.env.sizes.d_history:
            fill = max(0, (length - 3) // 2)
            with Profiler.maybe(profiler, f"ours-d{length}"):
                _, ids = self._run("bench_long_history", [{"fill": fill, "k": k}])
            state = self.client.get_workflow_state(ids[0])
            hist = self.client.get_workflow_history(ids[0])
            first_stamp = next(i for i, e in enumerate(hist) if e["kind"] == "TaskScheduled" and e["name"] == "stamp")
            gaps = gaps_ms(state.output if state else [])
            rows.append(Row("d", SYSTEM, f"ms/step @ {length} events", percentile(gaps, 50), "ms", "lower",
                            extra={"history_events_before": first_stamp, "timed_steps": k,
                                   "p99_ms": percentile(gaps, 99)}))
        return rows  # the cost ratios are derived from these by report.derive


def run(env: BenchEnv) -> list[Row]:
    return OursBench(env).run()
