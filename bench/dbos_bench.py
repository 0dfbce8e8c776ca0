"""DBOS peers on the same workloads: ``dbos-pg`` (the local PostgreSQL) and ``dbos-sqlite`` (a SQLite file).

Two ``bench.dbos_app`` worker processes share the system database; a ``DBOSClient`` enqueues the
workflows and waits for their results. The PostgreSQL run uses a fresh database that is dropped after
the run. DBOS is a bench-only extra (``pip install -e '.[bench]'``); when it or PostgreSQL is missing,
the rows are skipped with the reason.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from .common import (
    WORKERS,
    BenchEnv,
    CpuMeter,
    Row,
    Skip,
    Workers,
    gaps_ms,
    percentile,
    postgres_pids,
    process_cpu_seconds,
    python_cmd,
)

SYSTEMS = ("dbos-pg", "dbos-sqlite")
POLL = 0.02
TIMEOUT = 600.0


def _client_class() -> Any:
    try:
        from dbos import DBOSClient
    except ImportError as exc:
        raise Skip(f"DBOS is not installed ({exc}); install the bench extra: pip install -e '.[bench]'") from None
    return DBOSClient


class PostgresDatabase:
    """A fresh database on the local PostgreSQL, dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"bench_dbos_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def _admin(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise Skip("psycopg is not installed (it comes with the bench extra)") from None
        try:
            return psycopg.connect(self.admin_url.replace("postgresql+psycopg://", "postgresql://"),
                                   autocommit=True, connect_timeout=3)
        except Exception as exc:  # noqa: BLE001 - any connection failure means "no PostgreSQL here"
            raise Skip(f"PostgreSQL at {self.admin_url} is unavailable: {str(exc).strip()}") from None

    def create(self) -> str:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{self.name}"

    def drop(self) -> None:
        try:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except Skip:
            pass


class DbosBench:
    def __init__(self, env: BenchEnv, system: str) -> None:
        self.env = env
        self.system = system
        self.client_class = _client_class()
        self.pg = PostgresDatabase(env.postgres_url) if system == "dbos-pg" else None
        self.client: Any = None
        self.workers: list[Workers] = []

    def run(self) -> list[Row]:
        if self.pg is not None:
            url = self.pg.create()
        else:
            url = f"sqlite:///{(self.env.work_dir / f'dbos-{uuid.uuid4().hex[:6]}.sqlite').resolve()}"
        env_vars = {"BENCH_DBOS_URL": url}
        workers = [Workers(f"{self.system}-worker-{i}", [python_cmd("-m", "bench.dbos_app")], env_vars,
                           self.env.work_dir) for i in range(WORKERS)]
        started: list[Workers] = []
        try:
            # One at a time: the first process creates the schema, and concurrent migrations race.
            for w in workers:
                started.append(w.start(marker=b"bench-dbos-ready"))
            self.workers = started
            self.client = self.client_class(system_database_url=url)
            try:
                self._run_many("bench_chain", [2] * 4)  # warm-up
                return self._workloads()
            finally:
                self.client.destroy()
        finally:
            for w in started:
                w.stop()
            if self.pg is not None:
                self.pg.drop()

    def _enqueue(self, name: str, value: Any) -> Any:
        return self.client.enqueue({"queue_name": "bench", "workflow_name": name}, value)

    def _run_many(self, name: str, inputs: list[Any]) -> tuple[float, list[Any]]:
        t0 = time.perf_counter()
        handles = [self._enqueue(name, v) for v in inputs]
        results = [h.get_result(polling_interval_sec=POLL) for h in handles]
        return time.perf_counter() - t0, results

    def _per_executor(self, name: str) -> dict[str, int]:
        """How the workflows were shared between the worker processes (both must take part)."""
        counts: dict[str, int] = {}
        for status in self.client.list_workflows(name=name, load_input=False, load_output=False):
            counts[str(status.executor_id)] = counts.get(str(status.executor_id), 0) + 1
        return counts

    def _workloads(self) -> list[Row]:
        env, sizes, rows, system = self.env, self.env.sizes, [], self.system
        if env.wants("a"):
            n, k = sizes.a_workflows, sizes.a_steps
            cpu = CpuMeter(lambda: sum(w.cpu_seconds() for w in self.workers),
                           (lambda: process_cpu_seconds(postgres_pids())) if self.pg is not None else None)
            cpu.start()
            secs, _ = self._run_many("bench_chain", [k] * n)
            cpu_use = cpu.stop()
            rows.append(Row("a", system, "activity steps/s", n * k / secs, "steps/s", "higher",
                            extra={"seconds": secs, "workflows": n, "steps_each": k,
                                   "workflows_per_process": self._per_executor("bench_chain")}))
            if env.wants("f"):
                rows += cpu_use.rows(system, n * k)
        if env.wants("b"):
            n = sizes.b_steps
            secs, results = self._run_many("bench_stamps", [n])
            gaps = gaps_ms(results[0])
            rows.append(Row("b", system, "ms/step p50", percentile(gaps, 50), "ms", "lower",
                            extra={"seconds": secs, "steps": n, "mean_ms": sum(gaps) / len(gaps)}))
            rows.append(Row("b", system, "ms/step p99", percentile(gaps, 99), "ms", "lower"))
        if env.wants("c"):
            n = sizes.c_fanout
            secs, _ = self._run_many("bench_fan", [n])
            rows.append(Row("c", system, "fan-out/in s", secs, "s", "lower", extra={"tasks": n}))
        if env.wants("e"):
            n = sizes.e_starts
            t0 = time.perf_counter()
            handles = [self._enqueue("bench_empty", i) for i in range(n)]
            secs = time.perf_counter() - t0
            for h in handles:
                h.get_result(polling_interval_sec=POLL)
            rows.append(Row("e", system, "starts/s", n / secs, "starts/s", "higher", extra={"starts": n}))
        return rows


def run(env: BenchEnv, system: str) -> list[Row]:
    return DbosBench(env, system).run()
