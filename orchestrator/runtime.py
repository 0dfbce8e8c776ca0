"""WorkflowRuntime: where workflows and activities are registered, and the worker that runs them.

Mirrors the Dapr SDK's ``WorkflowRuntime``: decorate functions, then ``start()`` to run a worker inside
this process (scripts, notebooks, tests) and ``shutdown()`` to stop it. Production pools run the same
registrations as separate processes with ``orchestrator worker MODULE`` (or plain ``celery worker``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from .core.flow import flow_policy
from .core.registry import Registry
from .settings import Settings, load_settings, redact_url
from .store.connection import STORE_UNREACHABLE, RedisAuthError
from .store.redis_store import RedisStore
from .worker.celery_app import CeleryPublisher, become_pool_process, create_celery_app, leave
from .worker.circuit import CircuitBreaker
from .worker.duties import BackgroundDuties
from .worker.engine import Engine
from .worker.pool import CeleryApp, InProcessWorker, run_pool

log = logging.getLogger("orchestrator.runtime")
F = TypeVar("F", bound=Callable[..., Any])
_RUNTIMES: weakref.WeakSet[WorkflowRuntime] = weakref.WeakSet()


class WorkflowRuntime:
    def __init__(self, host: str | None = None, port: str | None = None, *, redis_url: str | None = None,
                 app_id: str | None = None, settings: Settings | None = None, **_dapr_options: Any) -> None:
        """``host``/``port`` and other Dapr sidecar options are accepted for compatibility and unused:
        this runtime talks to Redis directly (``redis_url``, default from ``REDIS_URL``)."""
        self.settings = (settings or load_settings()).replace(redis_url=redis_url, app_id=app_id)
        self.registry = Registry()
        self._store: RedisStore | None = None
        self._celery: CeleryApp | None = None
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._worker: Any = None
        self._duties: BackgroundDuties | None = None
        _RUNTIMES.add(self)

    # -- registration (Dapr-compatible) ---------------------------------------------------------
    def register_workflow(self, fn: Callable[..., Any], *, name: str | None = None,
                          version: str | None = None, **flow: Any) -> None:
        """``version`` registers one named version of ``name``: new instances run the latest (highest,
        in natural order), running ones keep the version they started with (README: Versioning).
        ``flow``: the flow-control options of ``orchestrator.core.flow.FlowPolicy`` (docs/flow-control.md)."""
        key = self.registry.add_workflow(fn, name, version)
        if flow:
            self.registry.set_flow("workflow", key, flow_policy(**flow))

    def register_activity(self, fn: Callable[..., Any], *, name: str | None = None, **flow: Any) -> None:
        key = self.registry.add_activity(fn, name)
        if flow:
            self.registry.set_flow("activity", key, flow_policy(**flow))

    def workflow(self, __fn: F | None = None, *, name: str | None = None, version: str | None = None,
                 **flow: Any) -> Any:
        """``@wfr.workflow``, ``@wfr.workflow(name="...")`` or ``@wfr.workflow(name="...", version="2")``;
        flow control: ``concurrency=``, ``concurrency_key=``, ``key_concurrency=``, ``rate=``, ``per=``,
        ``rate_per_key=``, ``priority=`` (docs/flow-control.md)."""
        def decorate(fn: F) -> F:
            self.register_workflow(fn, name=name, version=version, **flow)
            return fn
        return decorate(__fn) if __fn is not None else decorate

    def activity(self, __fn: F | None = None, *, name: str | None = None, **flow: Any) -> Any:
        """``@wfr.activity`` or ``@wfr.activity(name="...")``; the same flow-control options as ``workflow``."""
        def decorate(fn: F) -> F:
            self.register_activity(fn, name=name, **flow)
            return fn
        return decorate(__fn) if __fn is not None else decorate

    # -- the pieces, built on first use (after fork in prefork pools, redis-py reconnects) --------
    @property
    def app_id(self) -> str:
        return self.settings.app_id

    @property
    def store(self) -> RedisStore:
        with self._lock:
            if self._store is None:
                self._store = RedisStore.from_url(self.settings.redis_url, self.settings.key_prefix,
                                                  self.settings.shards)
                self._store.retention_ms = int(self.settings.retention_seconds * 1000)
            return self._store

    @property
    def celery_app(self) -> CeleryApp:
        with self._lock:
            if self._celery is None:
                self._celery = create_celery_app(self.settings, engine=lambda: self.engine)
            return self._celery

    @property
    def engine(self) -> Engine:
        store, celery = self.store, self.celery_app
        with self._lock:
            if self._engine is None:
                circuit = CircuitBreaker(store, self.app_id,
                                         self.settings.circuit_failure_threshold, self.settings.circuit_cooldown)
                publisher = CeleryPublisher(celery, direct=self.settings.broker_is_store)
                self._engine = Engine.from_settings(self.settings, store, self.registry, publisher, circuit=circuit)
            return self._engine

    def announce(self) -> None:
        """Record in Redis which app serves this runtime's workflows, so clients can route starts."""
        self.store.register_workflows(self.app_id, self.registry.workflows)

    def _announce_when_reachable(self) -> None:
        """A pool started while Redis is down (restarting, an outage) waits for it, as Celery waits for
        its broker, instead of exiting; refused credentials are a configuration error and raise."""
        delay = 0.5
        while True:
            try:
                self.announce()
                return
            except RedisAuthError:
                raise
            except STORE_UNREACHABLE as exc:
                log.warning("%s; retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- in-process worker ----------------------------------------------------------------------
    def start(self, concurrency: int | None = None) -> None:
        """Run a worker (threads) and the timer poller inside this process until ``shutdown()``."""
        if self._thread is not None:
            return
        self.announce()
        self._worker = InProcessWorker(self.celery_app, self.app_id, concurrency or self.settings.concurrency)
        self._thread = self._worker.start()
        if self._thread is None:
            raise RuntimeError(
                f"the in-process worker did not connect to the broker {redact_url(self.settings.broker)}")
        become_pool_process(self.engine, kind="inproc")
        self._duties = BackgroundDuties(self.engine, self.settings.timer_poll_interval, self.settings.sweep_interval)
        self._duties.start()

    def shutdown(self) -> None:
        if self._duties is not None:
            self._duties.stop()
            self._duties = None
        if self._worker is not None:
            self._worker.stop()
            self._thread = None
            self._worker = None
            leave(self.engine)

    def __enter__(self) -> WorkflowRuntime:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # -- process pool (the CLI's `orchestrator worker`) -----------------------------------------
    def run_worker(self, concurrency: int | None = None, queues: list[str] | None = None,
                   loglevel: str = "INFO", pool: str = "prefork", json_logs: bool = False) -> None:
        """Run a Celery worker pool in this process; blocks until it is stopped. ``json_logs``: every
        line the pool writes is a JSON log record (Celery's banner becomes one record)."""
        self._announce_when_reachable()
        run_pool(self.celery_app, self.app_id, concurrency or self.settings.concurrency, queues, loglevel, pool,
                 json_logs=json_logs, details={"workflows": sorted(self.registry.workflows),
                                               "activities": sorted(self.registry.activities)})


def runtimes() -> list[WorkflowRuntime]:
    """Runtimes created in this process (the CLI uses it to find the one a module defines)."""
    return list(_RUNTIMES)
