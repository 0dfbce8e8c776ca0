"""DBOS peer: the same workflows as ``bench.orch_app``, written the DBOS way.

A worker process is ``python -m bench.dbos_app`` with ``BENCH_DBOS_URL`` naming the system database
(PostgreSQL or SQLite). The benchmark runs two of them (the same process count as every other system);
the client enqueues workflows on the ``bench`` queue and either process dequeues them. Steps run inline
in the workflow's thread and are checkpointed in the database, which is DBOS's design. The queue is
polled every 10 ms (DBOS's default is 1 s, which would dominate the start latency).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from dbos import DBOS, DBOSConfig

QUEUE = "bench"
POLL_SECONDS = 0.01
# Workflows one process runs at once. Without a limit the first process to poll takes the whole queue
# and the second one idles; with it, both processes share the work, as they would in production.
WORKER_CONCURRENCY = int(os.environ.get("BENCH_DBOS_WORKER_CONCURRENCY", "25"))
READY = "bench-dbos-ready"


@DBOS.step(name="noop_step")
def noop_step() -> None:
    return None


@DBOS.step(name="stamp_step")
def stamp_step() -> float:
    return time.time()


@DBOS.workflow(name="bench_chain")
def bench_chain(n: int) -> int:
    for _ in range(n):
        noop_step()
    return n


@DBOS.workflow(name="bench_stamps")
def bench_stamps(n: int) -> list[float]:
    return [stamp_step() for _ in range(n)]


@DBOS.workflow(name="bench_task")
def bench_task() -> None:
    return noop_step()


@DBOS.workflow(name="bench_fan")
def bench_fan(n: int) -> int:
    """Fan-out/fan-in the DBOS way: enqueue the tasks on a queue, then wait for every handle."""
    queue = DBOS.retrieve_queue(QUEUE)
    assert queue is not None
    handles = [queue.enqueue(bench_task) for _ in range(n)]
    return len([h.get_result(polling_interval_sec=POLL_SECONDS) for h in handles])


@DBOS.workflow(name="bench_empty")
def bench_empty(value: int) -> int:
    return value


def config(url: str) -> DBOSConfig:
    return {"name": "bench", "system_database_url": url, "log_level": "WARNING",
            "executor_id": f"bench-{os.getpid()}", "application_version": "bench"}


def main() -> None:
    url = os.environ.get("BENCH_DBOS_URL")
    if not url:
        sys.exit("set BENCH_DBOS_URL to the system database URL")
    DBOS(config=config(url))
    DBOS.launch()
    DBOS.register_queue(QUEUE, polling_interval_sec=POLL_SECONDS, worker_concurrency=WORKER_CONCURRENCY,
                        on_conflict="always_update")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(READY, flush=True)
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=0)


if __name__ == "__main__":
    main()
