"""Running a pool: the in-process worker (``WorkflowRuntime.start``, threads) and a process pool
(``orchestrator worker``, Celery's ``worker_main``). Celery is imported here, not by the runtime."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_shutdown
from celery.worker import WorkController

from ..core.vocabulary import queue_name

CeleryApp = Celery


class InProcessWorker:
    """A Celery worker on threads inside this process, consuming the app's queue."""

    def __init__(self, app: Celery, app_id: str, concurrency: int) -> None:
        self.app, self.app_id, self.concurrency = app, app_id, concurrency
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30) -> threading.Thread | None:
        """Start it; its thread once it consumes, or None when it did not connect within ``timeout``."""
        app = self.app
        # Celery's trace falls back to current_app (thread-local, else the default app) for the
        # accepted content types; pool threads must see this app, which accepts msgpack only.
        app.set_current()
        app.set_default()
        started = threading.Event()

        class _Worker(WorkController):  # type: ignore[misc]
            def on_consumer_ready(self, consumer: Any) -> None:
                started.set()

        worker = _Worker(
            app=app, pool="threads", concurrency=self.concurrency, queues=[queue_name(self.app_id)],
            loglevel="WARNING", without_heartbeat=True, without_mingle=True, without_gossip=True,
            hostname=f"{self.app_id}-inproc-{os.getpid()}@localhost",
        )
        self._thread = threading.Thread(target=worker.start, name="orchestrator-worker", daemon=True)
        self._thread.start()
        return self._thread if started.wait(timeout) else None

    def stop(self) -> None:
        if self._thread is None:
            return
        from celery.worker import state

        state.should_terminate = 0
        self._thread.join(15)
        state.should_terminate = None
        self._thread = None


def run_pool(app: Celery, app_id: str, concurrency: int, queues: list[str] | None, loglevel: str,
             pool: str, *, json_logs: bool = False, details: dict[str, Any] | None = None) -> None:
    """Run a Celery worker pool in this process; blocks until it is stopped. ``json_logs``: every
    line the pool writes is a JSON log record (Celery's banner becomes one record, with ``details``)."""
    queues = queues or [queue_name(app_id)]
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}", f"--pool={pool}",
            f"--hostname={app_id}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    if json_logs:
        route_worker_prints_to_logging()
        argv.insert(0, "--quiet")  # an option of the celery command itself, before "worker"
        logging.getLogger("orchestrator.worker").info("worker pool starting", extra={
            "app_id": app_id, "queues": queues, "concurrency": concurrency, "pool": pool, **(details or {})})
    exitcodes: list[int] = []

    def _record_exit(sender: Any = None, **_: Any) -> None:
        if isinstance(getattr(sender, "exitcode", None), int):
            exitcodes.append(sender.exitcode)

    worker_shutdown.connect(_record_exit, weak=False)
    try:
        app.worker_main(argv)
    finally:
        worker_shutdown.disconnect(_record_exit)
    # Celery returns normally after an unrecoverable error (a broker it cannot use, say), which would
    # make a supervisor see a clean exit and not restart the pool: exit with Celery's failure code.
    failed = [code for code in exitcodes if code]
    if failed:
        logging.getLogger("orchestrator.worker").error("worker pool stopped after an unrecoverable error "
                                                       "(exit code %s); see the log above", failed[-1])
        raise SystemExit(failed[-1])


def route_worker_prints_to_logging() -> None:
    """Celery's worker prints a few lines itself (shutdown notices, restart hints) straight to the
    terminal; with JSON logs every line must be a record, so those go through logging instead. Its
    banner is turned off with ``--quiet`` by the caller and replaced by one record."""
    import celery.apps.worker as worker_module

    printed = logging.getLogger("celery.apps.worker")
    worker_module.safe_say = lambda msg, f=None: printed.warning("%s", str(msg).strip())  # type: ignore[attr-defined]


__all__ = ["CeleryApp", "InProcessWorker", "route_worker_prints_to_logging", "run_pool"]
