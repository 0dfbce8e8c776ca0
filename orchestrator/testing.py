"""Testing workflows: an in-process engine, time skipping, replay checks.

**In-process engine** (``WorkflowTestEnvironment``): the real engine, store and Lua scripts on an
in-memory Redis (fakeredis, with Redis's ``cmsgpack`` provided in Python through lupa), and an
*eager worker*: a publisher that runs each step and activity in the calling thread as soon as it is
sent, in order. No redis-server, no Celery, no other process: a workflow runs as far as it can
before ``start()`` or ``raise_event()`` returns. Time is a clock the test moves: ``advance(
timedelta(days=7))`` fires every durable timer due in those seven days in order, and the workflow's
``current_utc_datetime`` moves with it::

    from orchestrator.testing import WorkflowTestEnvironment
    from workers.order_approval import wfr

    with WorkflowTestEnvironment(wfr) as env:
        order_id = env.start("request_escalation", input={"amount": 5000})
        env.advance(timedelta(days=7))                    # nobody approved: the timer wins
        assert env.activity_calls(order_id)[0]["activity"] == "handle_timeout"

**Time skipping against a real store** (``skip_timers``, ``wait_for_timers``, ``pending_timers``),
for integration tests with real worker pools: durable timers live in the store's timer index, a
sorted set scored by fire time, which every pool's poller reads. ``skip_timers`` lowers the scores
of pending timers to *now*, so the next poll fires them through the normal, atomic path: each still
fires exactly once and the workflow sees a ``TimerFired`` as in production. Only the moment
changes: the firing's timestamp is the real time, earlier than the timer's recorded ``fire_at``. It
only uses ``ZADD XX LT`` (update an entry that still exists, to an earlier time), so it can never
re-arm a fired timer nor delay one. Use it against test stores only.

**Schedules** (docs/schedules.md): in a ``WorkflowTestEnvironment`` ``advance`` fires schedules as
their nominal times pass, with the timers; against a real store ``skip_schedules`` makes a
schedule fire its next nominal time at the pools' next poll.

**Replay checks** (``Replayer``, ``assert_replays``, from ``orchestrator.replayer``): replay
exported production histories against changed code before deploying it.

Nothing in the engine imports this module.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .core.context import from_ms, registered_name, to_ms
from .core.errors import WorkflowNotRegisteredError
from .core.registry import Registry
from .core.vocabulary import TERMINAL
from .replayer import Replayer, ReplayReport, ReplayResult, assert_replays
from .store.fake import fake_redis
from .store.flow import FlowStore
from .store.records import ActivityRecord
from .store.redis_store import RedisStore
from .store.schedules import ScheduleStore

# A WorkflowClient, a WorkflowRuntime (anything with a ``store``) or a RedisStore.
StoreLike = RedisStore | Any

__all__ = ["EagerPublisher", "PendingTimer", "Replayer", "ReplayReport", "ReplayResult", "WorkflowTestEnvironment",
           "assert_replays", "fake_redis", "pending_timers", "skip_schedules", "skip_timers", "wait_for_timers"]


@dataclass(frozen=True)
class PendingTimer:
    """A timer index entry that has not fired yet."""

    instance_id: str
    key: str  # "<generation>.<seq>" of a workflow timer, or "start" for a scheduled start
    fire_at: datetime  # UTC, timezone-aware

    @property
    def is_scheduled_start(self) -> bool:
        return self.key == "start"


def _store(target: StoreLike) -> RedisStore:
    store = target if isinstance(target, RedisStore) else getattr(target, "store", None)
    if not isinstance(store, RedisStore):
        raise TypeError(
            f"expected a WorkflowClient, a WorkflowRuntime or a RedisStore, got {type(target).__name__}"
        )
    return store


def _deadline_ms(until: datetime | timedelta | None, now_ms: int) -> float:
    if until is None:
        return float("inf")
    if isinstance(until, timedelta):
        return now_ms + until.total_seconds() * 1000
    if isinstance(until, datetime):
        return to_ms(until)  # a naive datetime is UTC, as everywhere in the engine
    raise TypeError(f"until must be a datetime, a timedelta or None, got {type(until).__name__}")


def _entries(store: RedisStore, instance_id: str | None, max_ms: float) -> list[tuple[str, str, int]]:
    return [(owner, key, fire_at) for owner, key, fire_at in store.timer_entries(None if max_ms == float("inf")
                                                                                  else int(max_ms))
            if instance_id is None or owner == instance_id]


def pending_timers(target: StoreLike, instance_id: str | None = None) -> list[PendingTimer]:
    """Timers not fired yet (all instances, or one), soonest first."""
    return [
        PendingTimer(owner, key, datetime.fromtimestamp(score / 1000, tz=UTC))
        for owner, key, score in _entries(_store(target), instance_id, float("inf"))
    ]


def skip_timers(target: StoreLike, instance_id: str | None = None,
                until: datetime | timedelta | None = None) -> int:
    """Make pending timers due now, so the pools' pollers fire them at their next poll.

    ``instance_id`` limits it to one instance; ``until`` to timers due at or before that moment (a
    ``timedelta`` counts from now: ``until=timedelta(days=7)`` is "let seven days pass"). Scheduled
    starts count as timers. Returns how many timers were moved; timers already due are left as is.
    """
    store = _store(target)
    now = int(time.time() * 1000)
    moved = [(owner, key) for owner, key, score in _entries(store, instance_id, _deadline_ms(until, now))
             if score > now]
    if not moved:
        return 0
    return store.bring_timers_forward(moved, now)


def skip_schedules(target: StoreLike, schedule_id: str | None = None) -> int:
    """Make schedules (one, or every unpaused one) fire their next nominal time at the pools' next
    poll, however far ahead it is; returns how many were moved. The run keeps the instance id of
    its nominal time, so it still fires exactly once (the normal path: a later skip moves on to
    the time after). In a ``WorkflowTestEnvironment``, ``advance`` covers schedules already."""
    store = _store(target)
    schedules = ScheduleStore.of(store)
    now = int(time.time() * 1000)
    ids = [schedule_id] if schedule_id is not None else schedules.ids()
    return sum(schedules.hurry(sid, now) for sid in ids)


def wait_for_timers(target: StoreLike, instance_id: str | None = None, count: int = 1,
                    timeout: float = 30.0) -> list[PendingTimer]:
    """Wait until at least ``count`` timers are pending (the workflow has reached its wait); return them."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    deadline = time.monotonic() + timeout
    while True:
        timers = pending_timers(target, instance_id)
        if len(timers) >= count:
            return timers
        if time.monotonic() >= deadline:
            where = f"instance {instance_id!r}" if instance_id else "the store"
            raise TimeoutError(f"{where} has {len(timers)} pending timer(s) after {timeout}s, expected {count}")
        time.sleep(0.02)


# -- the in-process engine ----------------------------------------------------------------------
class EagerPublisher:
    """The eager worker: runs each step and activity in this thread, in the order they were sent.

    A message sent while another runs is queued and runs after it (no recursion), so a workflow of
    any length runs in constant stack depth. Messages for an app without an engine, or whose
    workflow (version) no engine registers, are kept in ``stalled`` as a pool would leave them queued."""

    def __init__(self) -> None:
        self.engines: dict[str, Any] = {}
        self.queue: deque[tuple[str, Any, str]] = deque()
        self.stalled: list[tuple[str, Any, str, str]] = []  # (kind, payload, app, why)
        self.activities_run: list[ActivityRecord] = []
        self._running = False

    def send_step(self, instance_id: str, app_id: str) -> None:
        self.queue.append(("step", instance_id, app_id))
        self.drain()

    def send_activity(self, record: ActivityRecord, app_id: str) -> None:
        self.queue.append(("activity", record, app_id))
        self.drain()

    def drain(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            while self.queue:
                kind, payload, app = self.queue.popleft()
                engine = self.engines.get(app)
                if engine is None:
                    self.stalled.append((kind, payload, app, f"no engine serves app {app!r}"))
                elif kind == "step":
                    try:
                        engine.run_step(payload)
                    except WorkflowNotRegisteredError as exc:
                        self.stalled.append((kind, payload, app, str(exc)))
                else:
                    self.activities_run.append(payload)
                    engine.run_activity(payload)
        finally:
            self._running = False


def _copy_registry(source: Any) -> Registry:
    registry = source if isinstance(source, Registry) else getattr(source, "registry", None)
    if not isinstance(registry, Registry):
        raise TypeError(f"expected a WorkflowRuntime or a Registry, got {type(source).__name__}")
    copy = Registry()  # a copy, so mock_activity never changes the runtime under test
    copy.workflows, copy.activities = dict(registry.workflows), dict(registry.activities)
    copy.workflow_versions = {name: dict(v) for name, v in registry.workflow_versions.items()}
    copy.latest = dict(registry.latest)
    copy.flow = dict(registry.flow)
    return copy


class WorkflowTestEnvironment:
    """The real engine in this process: fakeredis, an eager worker and a clock the test moves.

    ``WorkflowTestEnvironment(wfr)`` serves the runtime's workflows and activities under its app id;
    pass several runtimes for a multi-app test (or ``{"app": runtime}``). ``client`` is a real
    ``WorkflowClient`` wired to it, so every client call works; the helpers below are shortcuts."""

    def __init__(self, *runtimes: Any, apps: dict[str, Any] | None = None, redis_client: Any = None,
                 prefix: str = "orch") -> None:
        from .client import WorkflowClient
        from .settings import Settings
        from .worker.engine import Engine

        served = dict(apps or {})
        for runtime in runtimes:
            served[getattr(getattr(runtime, "settings", None), "app_id", None) or "default"] = runtime
        if not served:
            raise ValueError("WorkflowTestEnvironment needs at least one WorkflowRuntime (or Registry) to serve")
        self.redis = redis_client if redis_client is not None else fake_redis()
        self.store = RedisStore(self.redis, prefix)
        self.offset_ms = 0
        self.publisher = EagerPublisher()
        self.registries = {app: _copy_registry(runtime) for app, runtime in served.items()}
        for app, registry in self.registries.items():
            # Steps run as the eager worker sends them, never inline in an activity: the order of a pool.
            # One registration, no heartbeat thread: every engine here lives as long as the environment.
            settings = Settings(app_id=app, key_prefix=prefix, inline_steps=False, heartbeat_interval=0)
            self.publisher.engines[app] = Engine.from_settings(settings, self.store, registry, self.publisher,
                                                               clock=self.now_ms)
            self.store.register_workflows(app, registry.workflows)
        self.client = WorkflowClient(Settings(redis_url="redis://in-process.invalid:1/0", key_prefix=prefix),
                                     store=self.store, publisher=self.publisher, clock=self.now_ms)
        self.client.caller = "test"

    # -- time -------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """The environment's clock: real time plus every ``advance`` so far (ms since the epoch)."""
        return int(time.time() * 1000) + self.offset_ms

    @property
    def now(self) -> datetime:
        return from_ms(self.now_ms()).replace(tzinfo=UTC)

    def advance(self, delta: timedelta) -> int:
        """Let ``delta`` pass: fire, in time order, every durable timer due by then (including timers
        created by the steps those firings run). Returns how many fired."""
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise ValueError(f"advance takes a non-negative timedelta, got {delta!r}")
        target, fired = self.now_ms() + int(delta.total_seconds() * 1000), 0
        while (due := self._next_timer_ms()) is not None and due <= target:
            self.offset_ms += max(0, due - self.now_ms())
            fired += self.fire_due_timers()
        self.offset_ms += max(0, target - self.now_ms())
        return fired

    def advance_to_next_timer(self) -> datetime | None:
        """Move the clock to the next pending timer and fire it; None when no timer is pending."""
        due = self._next_timer_ms()
        if due is None:
            return None
        self.offset_ms += max(0, due - self.now_ms())
        self.fire_due_timers()
        return from_ms(due).replace(tzinfo=UTC)

    def fire_due_timers(self) -> int:
        return next(iter(self.publisher.engines.values())).fire_due_timers()

    def _next_timer_ms(self) -> int | None:
        """The soonest of the next durable timer, due schedule and rate-limited work (advance moves
        the clock to each in turn)."""
        due = [t for t in (self.store.next_timer_at(), ScheduleStore.of(self.store).next_due(),
                           FlowStore.of(self.store).next_delayed()) if t is not None]
        return min(due) if due else None

    # -- driving workflows --------------------------------------------------------------------------
    def start(self, workflow: Callable[..., Any] | str, *, input: Any = None, instance_id: str | None = None,
              **options: Any) -> str:
        """``client.schedule_new_workflow``: returns once the workflow has run as far as it can."""
        return self.client.schedule_new_workflow(workflow, input=input, instance_id=instance_id, **options)

    def raise_event(self, instance_id: str, event_name: str, data: Any = None) -> None:
        self.client.raise_workflow_event(instance_id, event_name, data=data)

    def run_until_complete(self, instance_id: str, within: timedelta = timedelta(days=366)) -> Any:
        """Skip from timer to timer (at most ``within``) until the instance finishes; its state."""
        limit = self.now_ms() + int(within.total_seconds() * 1000)
        while True:
            state = self.state(instance_id)
            if state.runtime_status.name in TERMINAL:
                return state
            due = self._next_timer_ms()
            if due is None or due > limit:
                raise AssertionError(
                    f"instance {instance_id!r} is {state.runtime_status.name} and no timer is due within {within}: "
                    f"it waits for {self.client.get_pending_calls(instance_id) or 'an external event'}"
                    + (
                        f"; stalled messages: {[why for *_, why in self.publisher.stalled]}"
                        if self.publisher.stalled
                        else ""
                    )
                )
            self.advance_to_next_timer()

    def mock_activity(self, name: Callable[..., Any] | str, fn: Callable[..., Any], app_id: str | None = None) -> None:
        """Run ``fn`` instead of activity ``name`` (in this environment only)."""
        key = registered_name(name)
        for app, registry in self.registries.items():
            if app_id in (None, app):
                registry.activities[key] = fn

    # -- inspecting ---------------------------------------------------------------------------------
    def state(self, instance_id: str) -> Any:
        state = self.client.get_workflow_state(instance_id)
        if state is None:
            raise KeyError(f"no instance {instance_id!r}")
        return state

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        return self.client.get_workflow_history(instance_id)

    def activity_calls(self, instance_id: str) -> list[dict[str, Any]]:
        """The activity attempts an instance scheduled, in order: ``activity``, ``input``, ``attempt``,
        and ``result`` or ``failure`` (None while it runs)."""
        events = self.history(instance_id)
        outcome = {e["seq"]: e for e in events if e["kind"] in ("TaskCompleted", "TaskFailed")}
        return [{"activity": e["name"], "input": e["input"], "attempt": e["attempt"],
                 "result": outcome.get(e["seq"], {}).get("result"), "failure": outcome.get(e["seq"], {}).get("failure")}
                for e in events if e["kind"] == "TaskScheduled"]

    def pending_timers(self, instance_id: str | None = None) -> list[PendingTimer]:
        return pending_timers(self.store, instance_id)

    def export_history(self, instance_id: str) -> dict[str, Any]:
        return self.client.export_history(instance_id)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> WorkflowTestEnvironment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
