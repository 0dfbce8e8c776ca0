"""WorkflowRuntime: where workflows and activities are registered, and the worker that runs them.

Mirrors the Dapr SDK's ``WorkflowRuntime``: decorate functions, then ``start()`` to run a worker inside
this process (scripts, notebooks, tests) and ``shutdown()`` to stop it. Production pools run the same
registrations as separate processes with ``orchestrator worker MODULE`` (or plain ``celery worker``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .core.context import NAME_ATTRIBUTE
from .core.flow import flow_policy
from .core.interceptors import Interceptors, check_interceptors
from .core.registry import Registry
from .logger import apply_logger_options, setting_options
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
ALTERNATE_NAME = "_dapr_alternate_name"  # the attribute Dapr's decorators name a function by


class WorkflowRuntime:
    def __init__(self, host: str | None = None, port: str | None = None, logger_options: Any = None,
                 interceptors: Any = None, maximum_concurrent_activity_work_items: int | None = None,
                 maximum_concurrent_orchestration_work_items: int | None = None,
                 maximum_thread_pool_workers: int | None = None, worker_ready_timeout: float | None = None, *,
                 redis_url: str | None = None, app_id: str | None = None, settings: Settings | None = None,
                 runtime_interceptors: Sequence[Any] | None = None,
                 workflow_outbound_interceptors: Sequence[Any] | None = None, **options: Any) -> None:
        """Dapr's ``WorkflowRuntime(...)`` arguments, as Dapr names them. ``host``/``port`` name the
        Dapr sidecar, which this runtime does not use (it talks to Redis: ``redis_url``, default from
        ``REDIS_URL``); ``logger_options`` sets the level/handler of the ``orchestrator`` loggers.
        Activities and workflow steps share one pool of worker threads, so the concurrency options
        map onto its size: the larger of ``maximum_concurrent_activity_work_items`` and
        ``maximum_concurrent_orchestration_work_items``, else ``maximum_thread_pool_workers``, else the
        setting ``concurrency``. ``worker_ready_timeout`` bounds ``start()``'s wait for the worker (30 s).
        Other keywords name settings (``visibility_timeout=...``); an unknown one raises ``TypeError``.
        ``runtime_interceptors`` / ``workflow_outbound_interceptors``: Dapr's workflow interceptors
        (``orchestrator.interceptors``); ``interceptors`` (in Dapr, gRPC channel interceptors) takes
        workflow interceptors too, each put in the chain its methods name; a gRPC one raises ``TypeError``."""
        runtime_chain = check_interceptors(runtime_interceptors, "runtime", "runtime_interceptors")
        outbound_chain = check_interceptors(workflow_outbound_interceptors, "outbound",
                                            "workflow_outbound_interceptors")
        for item in check_interceptors(interceptors, "any", "interceptors"):
            if hasattr(item, "execute_workflow") or hasattr(item, "execute_activity"):
                runtime_chain.append(item)
            if hasattr(item, "call_activity") or hasattr(item, "call_child_workflow"):
                outbound_chain.append(item)
        limits = [n for n in (maximum_concurrent_activity_work_items, maximum_concurrent_orchestration_work_items)
                  if n is not None] or ([maximum_thread_pool_workers] if maximum_thread_pool_workers else [])
        for limit in limits:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"concurrency options must be positive integers, got {limit!r}")
        changes = setting_options(options, "WorkflowRuntime")
        if limits:
            changes["concurrency"] = max(limits)
        self.settings = (settings or load_settings()).replace(redis_url=redis_url, app_id=app_id, **changes)
        self.worker_ready_timeout = 30.0 if worker_ready_timeout is None else float(worker_ready_timeout)
        apply_logger_options(logging.getLogger("orchestrator"), logger_options)
        self.registry = Registry()
        self.registry.interceptors = Interceptors(runtime_chain, outbound_chain)
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
                          version: str | None = None, is_latest: bool | None = None, **flow: Any) -> None:
        """Register a workflow under ``name`` (default: its ``alternate_name``, else its ``__name__``).
        ``version`` registers one named version of ``name``: new instances run the latest (the one
        registered ``is_latest``, else the highest in natural order), running ones keep the version
        they started with (README: Versioning). A function or name registered twice raises
        ``ValueError``. On a started runtime the name is announced at once, so it can be scheduled.
        ``flow``: the flow-control options of ``orchestrator.core.flow.FlowPolicy`` (docs/flow-control.md)."""
        key = self.registry.add_workflow(fn, _name_for(fn, name, "Workflow"), version, is_latest)
        if flow:
            self.registry.set_flow("workflow", key, flow_policy(**flow))
        if self._thread is not None:
            self.announce()

    def register_versioned_workflow(self, fn: Callable[..., Any], *, name: str, version_name: str | None = None,
                                    is_latest: bool) -> None:
        """Dapr's named versions: ``version_name`` (default: the function's ``__name__``) of workflow
        ``name``; the one registered ``is_latest=True`` is what new instances run."""
        self.register_workflow(fn, name=name, version=version_name or fn.__name__, is_latest=is_latest)

    def register_activity(self, fn: Callable[..., Any], *, name: str | None = None, **flow: Any) -> None:
        key = self.registry.add_activity(fn, _name_for(fn, name, "Activity"))
        if flow:
            self.registry.set_flow("activity", key, flow_policy(**flow))

    def workflow(self, __fn: F | None = None, *, name: str | None = None, version: str | None = None,
                 **flow: Any) -> Any:
        """``@wfr.workflow``, ``@wfr.workflow(name="...")`` or ``@wfr.workflow(name="...", version="2")``;
        flow control: ``concurrency=``, ``concurrency_key=``, ``key_concurrency=``, ``rate=``, ``per=``,
        ``rate_per_key=``, ``priority=`` (docs/flow-control.md). Returns the function wrapped as Dapr's
        decorator does (carrying ``_dapr_alternate_name``); calling the wrapper calls the function."""
        def decorate(fn: F) -> F:
            self.register_workflow(fn, name=name, version=version, **flow)
            return _wrapper(fn)
        return decorate(__fn) if __fn is not None else decorate

    def versioned_workflow(self, __fn: F | None = None, *, name: str, version_name: str | None = None,
                           is_latest: bool) -> Any:
        """``@wfr.versioned_workflow(name="order", is_latest=True)`` (Dapr's)."""
        def decorate(fn: F) -> F:
            self.register_versioned_workflow(fn, name=name, version_name=version_name, is_latest=is_latest)
            return _wrapper(fn)
        return decorate(__fn) if __fn is not None else decorate

    def activity(self, __fn: F | None = None, *, name: str | None = None, **flow: Any) -> Any:
        """``@wfr.activity`` or ``@wfr.activity(name="...")``; the same flow-control options as ``workflow``."""
        def decorate(fn: F) -> F:
            self.register_activity(fn, name=name, **flow)
            return _wrapper(fn)
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
        """Run a worker (threads) and the timer poller inside this process until ``shutdown()``.
        Returns once the worker consumes its queue; ``RuntimeError`` if it is not ready within
        ``worker_ready_timeout`` seconds."""
        if self._thread is not None:
            return
        self.announce()
        self._worker = InProcessWorker(self.celery_app, self.app_id, concurrency or self.settings.concurrency)
        self._thread = self._worker.start(timeout=self.worker_ready_timeout)
        if self._thread is None:
            raise RuntimeError(
                f"the in-process worker did not connect to the broker {redact_url(self.settings.broker)}")
        become_pool_process(self.engine, kind="inproc")
        self._duties = BackgroundDuties(self.engine, self.settings.timer_poll_interval, self.settings.sweep_interval)
        self._duties.start()

    @property
    def is_worker_ready(self) -> bool:
        """Is this runtime's in-process worker consuming its queue?"""
        return self._thread is not None and self._thread.is_alive()

    def wait_for_worker_ready(self, timeout: float = 30.0) -> bool:
        """True once the worker started by ``start()`` consumes its queue, False after ``timeout``
        seconds without (Dapr's). ``start()`` itself returns only once the worker is ready."""
        deadline = time.monotonic() + timeout
        while not self.is_worker_ready:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

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


def _name_for(fn: Callable[..., Any], name: str | None, what: str) -> str | None:
    """The name to register ``fn`` under: ``name``, else its ``alternate_name``; both, differing,
    is Dapr's ValueError."""
    alternate = getattr(fn, ALTERNATE_NAME, None)
    if alternate and name is not None and name != alternate:
        raise ValueError(f"{what} {getattr(fn, '__name__', fn)!r} already has an alternate name {alternate!r}")
    return name or alternate or None


def _wrapper(fn: F) -> F:
    """What Dapr's decorators return: a function standing for ``fn`` that carries its registered
    name (``_dapr_alternate_name``) and signature, so ``call_activity(wrapper)`` and
    ``schedule_new_workflow(wrapper)`` find it. Calling it calls ``fn``."""
    @functools.wraps(fn)
    def registered(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    name = getattr(fn, NAME_ATTRIBUTE, None) or getattr(fn, "__name__", None)
    registered.__dict__[ALTERNATE_NAME] = name
    registered.__dict__[NAME_ATTRIBUTE] = name
    try:
        registered.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    registered.__wrapped_function__ = fn  # type: ignore[attr-defined]
    return registered  # type: ignore[return-value]


def alternate_name(name: str | None = None) -> Callable[[F], F]:
    """Dapr's ``@alternate_name("name")``: register the decorated workflow or activity under
    ``name``. A function given two alternate names raises ``ValueError``."""
    def decorate(fn: F) -> F:
        if getattr(fn, ALTERNATE_NAME, None):
            raise ValueError(f"Function {fn.__name__} already has an alternate name {getattr(fn, ALTERNATE_NAME)}")
        chosen = name or fn.__name__
        fn.__dict__[ALTERNATE_NAME] = chosen

        @functools.wraps(fn)
        def named(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        named.__dict__[ALTERNATE_NAME] = chosen
        named.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
        return named  # type: ignore[return-value]
    return decorate


def runtimes() -> list[WorkflowRuntime]:
    """Runtimes created in this process (the CLI uses it to find the one a module defines)."""
    return list(_RUNTIMES)
