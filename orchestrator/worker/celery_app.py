"""Everything Celery: the app, its tasks, the publisher, and starting the pool's background duties.

Messages are msgpack only (no other serializer is accepted, so a message on the broker can never
execute code). Tasks are ``acks_late`` and rejected on worker loss, so a killed worker's message is
redelivered; duplicates are harmless because commits are version-checked and deliveries deduplicated.
Each app id has its own queue, ``orchestrator.<app_id>``, for both steps and activities.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import kombu.exceptions
from celery import Celery
from celery.exceptions import TimeLimitExceeded
from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from ..core.errors import FailureDetails
from ..core.flow import DEFAULT_PRIORITY, PRIORITIES, priority_list
from ..core.vocabulary import queue_name
from ..settings import Settings
from ..store import monitoring, pool_names
from ..store.connection import STORE_RETRYABLE, StoreError, StoreUnavailable
from ..store.records import ActivityRecord, activity_task_key
from . import tracing
from .broker import transport_for
from .duties import BackgroundDuties
from .engine import Engine
from .envelope import task_message
from .liveness import held_delivery_tags
from .ride_out import ride_out

log = logging.getLogger("orchestrator.worker")
# What publishing a message raises when the broker cannot take it now (the store marked the step
# ready, so a sweeper publishes it later: callers log these and carry on).
PUBLISH_ERRORS: tuple[type[Exception], ...] = (kombu.exceptions.OperationalError, StoreUnavailable)
STEP_TASK, ACTIVITY_TASK, ACTIVITIES_TASK = "orchestrator.step", "orchestrator.activity", "orchestrator.activities"
_RETRYABLE = STORE_RETRYABLE


class ActivityAttemptFailed(Exception):
    """Raised by an activity task once its attempt's failure is delivered to the workflow, so that
    Celery, its events and Flower report the message as FAILURE, not SUCCESS. It is in the task's
    ``throws`` (logged on one line, no traceback) and not in ``autoretry_for``: Celery neither retries
    nor rejects the message, and ``acks_late`` acknowledges it exactly as after a success. The
    engine's own retry policy (a durable timer) decides what happens next."""

    def __init__(self, failures: list[FailureDetails], attempts: int = 1) -> None:
        first = failures[0]
        what = f"{first.error_type}: {first.message}"
        text = what if attempts == 1 else f"{len(failures)} of {attempts} attempts failed; first: {what}"
        super().__init__(text)
        self.error_type = first.error_type


def _report(failures: list[FailureDetails], attempts: int = 1) -> None:
    if failures:
        raise ActivityAttemptFailed(failures, attempts)


def create_celery_app(settings: Settings, engine: Callable[[], Engine] | None = None) -> Celery:
    """A Celery app for one worker pool (or, with ``engine=None``, for publishing only)."""
    app = Celery(f"orchestrator.{settings.app_id}", broker=settings.broker, set_as_current=False)
    _configure(app, settings)
    if engine is not None:
        _register_tasks(app, settings, engine)
        _run_duties_with_worker(app, settings, engine)
    return app


def _configure(app: Celery, settings: Settings) -> None:
    app.conf.update(
        task_serializer="msgpack",
        accept_content=["msgpack"],
        event_serializer="json",
        result_accept_content=["msgpack"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=settings.prefetch_multiplier,
        task_default_queue=queue_name(settings.app_id),
        # A killed worker's unacknowledged messages come back after the visibility timeout, found
        # by a periodic scan; by default kombu scans every 10 s x 10 calls, far too rarely.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
            # One list per priority 0..9 (core/flow.py): consumers pop the most urgent first.
            "priority_steps": list(PRIORITIES),
            **settings.broker_transport_options,
        },
        # RabbitMQ: the app queues (this pool's and those it publishes to) of the type asked for.
        task_default_queue_type=settings.broker_queue_type,
        task_create_missing_queue_type=settings.broker_queue_type,
        broker_connection_retry_on_startup=True,
        broker_transport=transport_for(settings.broker),  # kombu's Redis transport, minus a crash on restart
        # Survive a Redis outage of any length (Celery gives up after 100 reconnection attempts by
        # default, roughly 50 minutes, and the pool exits); the engine's own duties wait forever too.
        broker_connection_max_retries=None,
        # Redis refusing a command (OOM at maxmemory, READONLY after a failover demoted it) is a
        # "channel error" to kombu; by default Celery calls that unrecoverable and the pool exits.
        broker_channel_error_retry=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )


def _register_tasks(app: Celery, settings: Settings, engine: Callable[[], Engine]) -> None:
    """The step task, the activity task (one attempt) and the activities task (a fan-out batch)."""
    if settings.tracing:
        tracing.enable()
        tracing.configure_from_env()
    # shared=False: Celery's default shares a decorated task with every app created later in the
    # process, so a second runtime's app would run the first one's engine (the closure below).
    retry_opts: dict[str, Any] = dict(
        shared=False, acks_late=True, reject_on_worker_lost=True, ignore_result=True, autoretry_for=_RETRYABLE,
        retry_backoff=True, retry_backoff_max=30, retry_jitter=True, max_retries=None,
    )

    patience = settings.redis_retry_seconds

    @app.task(name=STEP_TASK, bind=True, **retry_opts)
    def step(task: Any, instance_id: str) -> None:
        redelivered = _redelivered(task)
        ride_out(lambda: engine().run_step_message(instance_id, redelivered=redelivered), f"step of {instance_id}",
                 patience)

    class ActivityTask(app.Task):  # type: ignore[name-defined, misc]
        """Celery's hard time limit kills the process running an attempt and acks its message: the
        worker's parent then delivers the attempt's failure, or the workflow would wait forever."""

        def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            if isinstance(exc, TimeLimitExceeded) and args and isinstance(args[0], dict):
                rec = cast(ActivityRecord, args[0])
                failure = FailureDetails(
                    f"activity {rec.get('name')!r} exceeded the worker's hard time limit "
                    f"({settings.activity_time_limit} s); its process was killed",
                    TimeLimitExceeded.__name__,
                    qualified_type=f"{TimeLimitExceeded.__module__}.{TimeLimitExceeded.__qualname__}")
                eng = engine()
                if eng.circuit is not None:
                    eng.circuit.record(rec["name"], ok=False, now_ms=eng.clock())
                eng.deliver_attempt(rec, None, failure, inline=False)

    @app.task(name=ACTIVITY_TASK, base=ActivityTask, bind=True, throws=(ActivityAttemptFailed,), **retry_opts,
              **_time_limits(settings))
    def activity(task: Any, record: ActivityRecord) -> None:
        tracing.from_message(task.request, [record])
        _report(engine().run_activity(record, redelivered=_redelivered(task)))

    # Several attempts of one wide fan-out (worker/activities.py); never sent when time limits are set.
    @app.task(name=ACTIVITIES_TASK, bind=True, throws=(ActivityAttemptFailed,), **retry_opts)
    def activities(task: Any, records: list[ActivityRecord]) -> None:
        tracing.from_message(task.request, records)
        _report(engine().run_activities(records, redelivered=_redelivered(task)), len(records))


def _run_duties_with_worker(app: Celery, settings: Settings, engine: Callable[[], Engine]) -> None:
    """Start the pool's background duties when its worker is ready; stop them at its shutdown."""
    duties: dict[str, BackgroundDuties] = {}

    @worker_ready.connect(weak=False)
    def _start_duties(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app and "d" not in duties:
            eng = engine()
            # Plain `celery worker` pools announce their workflows too, so clients can route starts.
            try:
                eng.store.register_workflows(eng.app_id, eng.registry.workflows)
                for risk in monitoring.durability_risks(eng.store):
                    log.warning("%s", risk)
            except StoreError as exc:  # the duties must start even if Redis just went away
                log.warning("could not announce this pool's workflows: %s", exc)
            become_pool_process(eng)
            duties["d"] = BackgroundDuties(eng, settings.timer_poll_interval, settings.sweep_interval)
            duties["d"].start()

    @worker_shutting_down.connect(weak=False)
    def _grace(**_: Any) -> None:
        """SIGTERM: Celery's warm shutdown lets running tasks finish and puts prefetched messages
        back; past ``shutdown_grace`` the rest is handed back (worker/liveness.py) and the pool exits."""
        if "d" in duties and settings.shutdown_grace > 0:
            timer = threading.Timer(settings.shutdown_grace, give_up, args=(engine(), settings.shutdown_grace))
            timer.daemon = True
            timer.start()

    @worker_shutdown.connect(weak=False)
    def _stop_duties(sender: Any = None, **_: Any) -> None:
        if "d" in duties:
            duties.pop("d").stop()
            leave(engine())

    _child_processes(engine)


def _child_processes(engine: Callable[[], Engine]) -> None:
    """Prefork children register as they start and leave as they stop (worker/liveness.py)."""
    @worker_process_init.connect(weak=False)
    def _child_registers(**_: Any) -> None:
        """A prefork child registers as it starts (not at its first task), so ``orchestrator pools`` shows it."""
        try:
            engine().liveness.get()
        except StoreError as exc:
            log.warning("could not register this worker process: %s", exc)

    @worker_process_shutdown.connect(weak=False)
    def _child_leaves(**_: Any) -> None:
        eng = engine()
        me = eng.liveness.peek()
        if me is not None and me.kind != "pool":  # a prefork child (the pool process leaves at worker_shutdown)
            leave(eng, quiet=True)


def give_up(eng: Engine, grace: float) -> None:
    """The shutdown grace is over and work still runs: declare this pool's processes dead, so that
    any live pool's sweeper puts back their messages and publishes their claimed work at once, stop
    the children and exit. The interrupted attempts run again elsewhere (at least once)."""
    me = eng.liveness.peek()
    log.warning("shutdown grace (%g s, setting shutdown_grace) is over with work still running; handing it back "
                "and exiting", grace)
    try:
        if me is not None:
            me.give_up()
            for child in eng.store.liveness.processes():
                if child.kind == "worker" and child.host == me.record()["host"] and str(child.pid) in _children():
                    eng.store.liveness.mark_dead(child.process_id)
    except StoreError as exc:
        log.warning("could not hand the work back (%s); it comes back when the heartbeats expire", exc)
    for pid in _children():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    os._exit(1)


def _children() -> set[str]:
    """Pids of this process's children (Linux /proc; empty elsewhere)."""
    me, found = str(os.getpid()), set()
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as fh:
                        if fh.read().rsplit(b")", 1)[-1].split()[1].decode() == me:
                            found.add(entry)
                except (OSError, IndexError):
                    continue
    except OSError:
        pass
    return found


def leave(eng: Engine, quiet: bool = False) -> None:
    """This process is shutting down: deregister it and hand back the work it still claims."""
    me = eng.liveness.peek()
    if me is None:
        return
    claims = me.leave()
    if claims:
        log.warning("handing back %d steps and activity attempts this process had claimed", len(claims))
        try:
            eng.duties.hand_back(claims)
        except Exception as exc:  # noqa: BLE001 - shutting down: the sweepers' claim sweep covers it
            log.warning("could not hand back the claimed work: %s", exc)
    elif not quiet:
        log.info("worker process %s deregistered", me.process_id)


def become_pool_process(eng: Engine, kind: str = "pool") -> None:
    """This process runs the pool's consumer and duties: its registry record says so, lists its
    queue and the messages it holds (put back by whoever reaps it, worker/liveness.py). A pool that
    joins an app whose other pools register other names says so."""
    try:
        me = eng.liveness.get()
        me.kind, me.queues, me.held = kind, [queue_name(eng.app_id)], held_delivery_tags
        me.beat()
        warn_of_differences(eng, me.describe())
    except StoreError as exc:
        log.warning("could not register this pool process: %s", exc)


def warn_of_differences(eng: Engine, described: dict[str, Any]) -> str | None:
    """Log (and return) how this pool's workflows and activities (``described``, its registry record's)
    differ from the other pools of its app (store/pool_names.py)."""
    mine = pool_names.workflow_names(described["workflows"]), set(described["activities"])
    message = pool_names.join_warning(eng.app_id, mine, eng.peers())
    if message:
        log.warning("%s", message)
    return message


def _redelivered(task: Any) -> bool:
    """Did kombu hand this message out before (a worker died holding it, or its visibility timeout passed)?"""
    return bool((task.request.delivery_info or {}).get("redelivered"))


def _time_limits(settings: Settings) -> dict[str, float]:
    """The activity task's Celery time limits (settings ``activity_soft_time_limit`` / ``activity_time_limit``)."""
    soft, hard = settings.activity_soft_time_limit, settings.activity_time_limit
    for name, value in (("activity_soft_time_limit", soft), ("activity_time_limit", hard)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds or unset, got {value!r}")
    if soft is not None and hard is not None and soft >= hard:
        raise ValueError(f"activity_soft_time_limit ({soft}) must be below activity_time_limit ({hard})")
    limits = {"soft_time_limit": soft, "time_limit": hard}
    return {k: v for k, v in limits.items() if v is not None}


class CeleryPublisher:
    """Sends steps and activities as Celery messages to the queue of the app that serves them.

    Messages carry a short ``argsrepr`` label: Celery would otherwise render every payload with
    ``saferepr`` for its logs, about a quarter of the cost of a publish. ``batch()`` holds one
    producer for a whole outbox (a fan-out publishes hundreds of messages).

    With ``direct=True`` (the broker is the store's Redis) ``activity_message`` hands the engine the
    finished message instead, which the step's commit script pushes onto the queue itself."""

    def __init__(self, app: Celery, *, direct: bool = False) -> None:
        self.app = app
        self.direct = direct
        self._held = threading.local()

    @contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._held, "producer", None) is not None:
            yield
            return
        with self.app.producer_or_acquire() as producer:
            self._held.producer = producer
            try:
                yield
            finally:
                self._held.producer = None

    def restore_unacked(self, queues: list[str], keep: set[str], delivered_before: float) -> int:
        """Put back on their queues the messages kombu holds as unacknowledged for ``queues``,
        delivered before ``delivered_before`` (s) and not among ``keep`` (tags live processes hold):
        a dead process's messages, which kombu itself would bring back only after the visibility
        timeout. Flagged redelivered, as kombu's own restore does; how many were put back."""
        wanted, restored = set(queues), 0
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            client = channel.client
            for raw_tag in client.zrangebyscore(channel.unacked_index_key, "-inf", delivered_before):
                tag = raw_tag.decode() if isinstance(raw_tag, bytes) else str(raw_tag)
                raw = None if tag in keep else client.hget(channel.unacked_key, tag)
                if raw is None:
                    continue
                try:
                    _, exchange, routing_key = json.loads(raw)
                except ValueError:
                    continue
                if routing_key in wanted or exchange in wanted:
                    channel.qos.restore_by_tag(tag, client)
                    restored += 1
        return restored

    def queue_depth(self, app_id: str) -> int:
        """Messages waiting in the app's queue (not those a consumer holds)."""
        with self.app.connection_for_read() as conn:
            return int(conn.default_channel._size(queue_name(app_id)))

    def send_step(self, instance_id: str, app_id: str) -> None:
        self.send_priority_step(instance_id, app_id, None)

    def send_priority_step(self, instance_id: str, app_id: str, priority: int | None) -> None:
        self.app.send_task(STEP_TASK, args=[instance_id], queue=queue_name(app_id),
                           argsrepr=instance_id, kwargsrepr="{}", producer=getattr(self._held, "producer", None),
                           priority=_priority(priority))

    def send_activity(self, record: ActivityRecord, app_id: str) -> None:
        self.app.send_task(ACTIVITY_TASK, args=[record], queue=queue_name(app_id), task_id=_activity_task_id(record),
                           argsrepr=_activity_label(record), kwargsrepr="{}",
                           producer=getattr(self._held, "producer", None),
                           headers=tracing.message_headers(record["id"]) or None, priority=_priority(record.get("pr")))

    def send_activities(self, records: list[ActivityRecord], app_id: str) -> None:
        """One message running ``records`` (the ``activities`` task), through the broker's own client."""
        if len(records) == 1:
            self.send_activity(records[0], app_id)
            return
        first = records[0]
        self.app.send_task(ACTIVITIES_TASK, args=[records], queue=queue_name(app_id),
                           task_id=f"{_activity_task_id(first)}+{len(records) - 1}", argsrepr=_batch_label(records),
                           kwargsrepr="{}", producer=getattr(self._held, "producer", None),
                           headers=tracing.message_headers(first["id"]) or None, priority=_priority(first.get("pr")))

    def step_message(self, instance_id: str, app_id: str, priority: int | None = None) -> tuple[str, bytes] | None:
        """(queue key, message bytes) of ``send_step`` for the store to push, or None: publish it."""
        if not self.direct:
            return None
        queue, p = queue_name(app_id), _priority(priority)
        return priority_list(queue, p), task_message(
            STEP_TASK, [instance_id], task_id=str(uuid.uuid4()), queue=queue, argsrepr=instance_id, priority=p
        )

    def activity_message(self, records: list[ActivityRecord], app_id: str) -> tuple[str, bytes] | None:
        """(queue key, message bytes) of one message running ``records`` for the store to push, or
        None: publish through the outbox."""
        if not self.direct:
            return None
        queue, p = queue_name(app_id), _priority(records[0].get("pr"))
        if len(records) == 1:
            return priority_list(queue, p), task_message(
                ACTIVITY_TASK, records, task_id=_activity_task_id(records[0]), queue=queue,
                argsrepr=_activity_label(records[0]), extra_headers=tracing.message_headers(records[0]["id"]),
                priority=p)
        first = records[0]
        task_id = f"{_activity_task_id(first)}+{len(records) - 1}"
        return priority_list(queue, p), task_message(ACTIVITIES_TASK, [records], task_id=task_id, queue=queue,
                                                     argsrepr=_batch_label(records), priority=p,
                                                     extra_headers=tracing.message_headers(first["id"]))


def _priority(priority: int | None) -> int:
    """A message's priority: the given one, else the default (core/flow.py)."""
    return DEFAULT_PRIORITY if priority is None else priority


def _activity_task_id(record: ActivityRecord) -> str:
    """One Celery task id per attempt: ``<instance>|<task key>|<attempt>``."""
    return f"{record['id']}|{activity_task_key(record)}|{record.get('attempt', 1)}"


def _batch_label(records: list[ActivityRecord]) -> str:
    first, last = records[0], records[-1]
    return f"{len(records)} activities of {first['id']} (tasks {activity_task_key(first)}..{last['seq']})"


def _activity_label(record: ActivityRecord) -> str:
    return f"{record['name']} of {record['id']}"
