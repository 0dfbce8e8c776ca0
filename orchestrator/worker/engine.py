"""The engine: one worker pool's parts, put together, and the loops that join them.

A step loads the instance, replays it with the inbox events it consumes, and commits the outcome in
one atomic script (worker/steps.py, worker/planner.py). Messages the publisher can build are pushed
by that script; the other dispatches (the outbox) are published after it (worker/dispatch.py).
Activities run in worker/activities.py, within the message budget (worker/budget.py); replayed
workflows stay in the replay cache (worker/cache.py); timers and sweeps are worker/duties.py.
Publishing goes through a ``Publisher`` (worker/publisher.py; Celery in production), so none of
this knows the transport.

Every setting comes from ``Settings`` (``Engine.from_settings``): the keyword arguments the
constructor also takes override single settings, for tests that build an engine by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ..core.errors import FailureDetails, WorkflowNotRegisteredError
from ..core.registry import Registry
from ..settings import Settings
from ..store.connection import StoreError
from ..store.liveness import ProcessInfo
from ..store.records import ActivityRecord, Dispatch
from ..store.redis_store import RedisStore
from ..store.step_io import Snapshot
from . import activities
from .budget import MessageBudget
from .cache import CachedExecution, ExecutionCache
from .circuit import CircuitBreaker
from .deadline import StepDeadline
from .dispatch import Dispatcher
from .duties import Duties
from .flow import FlowGate
from .liveness import LivenessHolder, ProcessLiveness
from .planner import StepPlanner
from .publisher import Publisher, SendingPublisher, full_publisher
from .retention import RetentionSweeper
from .schedules import ScheduleFirer
from .steps import MAX_STEP_ROUNDS, StepRunner

log = logging.getLogger("orchestrator.engine")


def now_ms() -> int:
    return int(time.time() * 1000)


# The constructor's keyword names that are not the setting's own name.
_RENAMED = {"redeliver_after": "visibility_timeout"}


class Engine:
    """Runs the steps and activities of one app's workflows against the store."""

    def __init__(self, store: RedisStore, registry: Registry, publisher: SendingPublisher, app_id: str, *,
                 settings: Settings | None = None, clock: Callable[[], int] = now_ms,
                 circuit: CircuitBreaker | None = None, **overrides: Any) -> None:
        """``overrides``: settings by name (``inline_steps=False``, ``history_warn_events=25``, ...;
        ``redeliver_after`` is ``visibility_timeout``) over ``settings`` (default: ``Settings()``)."""
        s = (settings or Settings()).replace(**{_RENAMED.get(k, k): v for k, v in overrides.items()})
        self.settings = s
        self.store = store
        self.registry = registry
        self.publisher = publisher  # as given (tests read their own publisher's attributes)
        self.outgoing: Publisher = full_publisher(publisher)
        self.app_id = app_id
        self.clock = clock
        self.circuit = circuit  # None or disabled: every attempt runs
        self.inline_steps = s.inline_steps
        self.max_payload_bytes = s.max_payload_bytes
        self.redis_retry_seconds = s.redis_retry_seconds
        self.executions = ExecutionCache(s.replay_cache_size)
        self.budget = MessageBudget(s.message_budget_seconds, s.effective_eager_hops)
        self.dispatch = Dispatcher(store, self.outgoing, clock, fanout_parallelism=s.fanout_parallelism,
                                   activity_batch_size=s.effective_batch_size, may_run_eagerly=self._may_run_eagerly,
                                   wake=self.wake, apply_controls=self.apply_controls)
        self.planner = StepPlanner(registry, app_id, clock, s.max_payload_bytes, store.child_ids,
                                   self.dispatch.route_activities, history_of=store.get_history,
                                   deadline=StepDeadline(s.step_deadline), strict_determinism=s.strict_determinism)
        self.liveness = LivenessHolder(lambda: ProcessLiveness(
            store.liveness, app_id, interval=s.heartbeat_interval, expiry=s.process_expiry,
            describe=self._describe, clock=clock))
        self.lost_attempt_retries = s.lost_attempt_retries
        # Flow control (worker/flow.py): slots of activity attempts are held in this process's liveness id.
        self.flow = FlowGate(store, registry, self.outgoing, clock, holder=lambda: self.liveness.get().process_id,
                             process_expiry_ms=int(s.process_expiry * 1000))
        self._peers: tuple[float, list[ProcessInfo]] | None = None
        self.steps = StepRunner(store, self.planner, self.executions, clock, self.dispatch.publish_outbox,
                                s.history_warn_events, self.liveness, s.lost_attempt_retries,
                                lambda process_id: self.reap_if_dead_here(process_id),
                                admit=self.flow.admit_step, finished=self.flow.finished_instance)
        # An activity attempt silent this long (not started since dispatch, or not finished since it
        # started) is published again: the setting visibility_timeout, kombu's own redelivery delay.
        self.duties = Duties(store, self.outgoing, clock, app_id, stale_after_ms=int(s.stale_after * 1000),
                             redeliver_after_ms=int(s.visibility_timeout * 1000),
                             publish_outbox=self.dispatch.publish_outbox, liveness=self.liveness,
                             broker=publisher)
        store.retention_ms = int(s.retention_seconds * 1000)
        self.retention = RetentionSweeper(store, clock, s.retention_export_dir, self.dispatch.publish_outbox)
        self.schedule_firer = ScheduleFirer(store, self.outgoing, clock)  # due schedules (worker/schedules.py)

    def _describe(self) -> dict[str, object]:
        """What this process serves, for its registry record (``orchestrator pools``)."""
        versions = self.registry.workflow_versions
        return {"workflows": {name: sorted(versions.get(name, {"": None})) for name in self.registry.workflows},
                "activities": sorted(self.registry.activities)}

    def peers(self) -> list[ProcessInfo]:
        """The other live processes of this app (read at most every heartbeat interval)."""
        now = time.monotonic()
        if self._peers is None or now - self._peers[0] > self.settings.heartbeat_interval:
            me = self.process_id
            expiry = int(self.settings.process_expiry * 1000)
            found = [p for p in self.store.liveness.live_processes(self.clock(), expiry)
                     if p.app_id == self.app_id and p.process_id != me]
            self._peers = (now, found)
        return self._peers[1]

    def served_elsewhere(self, activity: str) -> bool:
        """Does another live process of this app register ``activity``?"""
        return any(activity in p.activities for p in self.peers())

    def workflow_served_elsewhere(self, workflow: str) -> bool:
        """Does another live process of this app register ``workflow`` in a version this one lacks?"""
        mine = set(self.registry.workflow_versions.get(workflow, {}))
        if workflow in self.registry.workflows and not mine:
            mine = {""}
        return any(workflow in p.workflows and not set(p.workflows[workflow]) <= mine for p in self.peers())

    def run_step_message(self, instance_id: str, *, redelivered: bool = False) -> None:
        """A step message: ``run_step``, under a message budget like an activity message's, so that the
        step's one activity runs here (eager) and the chain goes on from it; one for a workflow (or
        version) this process lacks but another live process of the app registers goes back to the
        queue instead of failing."""
        try:
            with self._handling([instance_id], redelivered):
                self.run_step(instance_id)
        except WorkflowNotRegisteredError:
            meta = self.store.get_meta(instance_id)
            if meta is None or not self.workflow_served_elsewhere(meta.name):
                raise
            log.info("workflow %r (or the version of it instance %s runs) is not registered in this process; "
                     "sending its step back to the queue of app %r", meta.name, instance_id, meta.app,
                     extra={"instance_id": instance_id, "workflow": meta.name})
            self.outgoing.send_step(instance_id, meta.app)

    def reap_if_dead_here(self, process_id: str) -> bool:
        """Reap a claim holder that ran on this host and whose pid is gone (worker/duties.py)."""
        return self.duties.reap_if_dead_here(process_id)

    @property
    def process_id(self) -> str:
        """This process's id in the registry (registering it and starting its heartbeat on first use)."""
        return self.liveness.get().process_id

    @classmethod
    def from_settings(cls, settings: Settings, store: RedisStore, registry: Registry, publisher: SendingPublisher,
                      *, clock: Callable[[], int] = now_ms, circuit: CircuitBreaker | None = None,
                      **overrides: Any) -> Engine:
        """The engine of the pool ``settings.app_id`` (the runtime's and the test toolkit's way in)."""
        return cls(store, registry, publisher, settings.app_id, settings=settings, clock=clock, circuit=circuit,
                   **overrides)

    # -- steps ----------------------------------------------------------------------------------------
    def run_step(self, instance_id: str, prefetched: Snapshot | None = None) -> None:
        """Bring the instance up to date with its inbox (``prefetched``: the snapshot the waking
        delivery returned).

        The eager-activity loop: a step that schedules exactly one activity this pool serves keeps
        it (within the message budget); it runs here right after the commit, its result's delivery
        may wake the next step here, which may keep the next activity, and so on. A kept activity
        the loop cannot take any further goes the usual way (its step's message)."""
        pending = self.steps.run(instance_id, prefetched)
        try:
            while pending:
                pending[:0] = self._run_eager(pending.pop(0))
        except BaseException:
            self.dispatch.hand_back_eager(pending)
            raise

    def _run_eager(self, rec: ActivityRecord) -> list[ActivityRecord]:
        """Run a kept activity, then its instance's next step with the result in hand when this process
        can decide it without the store (StepRunner.run_with_result), else the usual way: deliver it,
        and run the step it woke. Returns the activities that step kept in turn."""
        outcome = activities.run_claimed(self, rec)
        if self.runs_here(rec["wapp"], rec["wf"]):
            try:
                kept = self.steps.run_with_result(rec, activities.result_event(outcome, self.clock()))
            except (StoreError, WorkflowNotRegisteredError) as exc:  # the delivery below rides it out / routes it
                log.info("step with the result of %s in hand failed (%s); delivering it", rec["id"], exc)
                kept = None
            if kept is not None:
                return kept
        activities.deliver_outcome(self, outcome)
        woken = outcome.woken
        if woken is None:
            return []
        if not self.runs_here(woken.app, woken.workflow):
            self.outgoing.send_step(woken.instance_id, woken.app)
            return []
        try:
            return self.steps.run(woken.instance_id, woken.snapshot)
        except WorkflowNotRegisteredError:  # a workflow version this pool lacks: another pool's step
            self.outgoing.send_step(woken.instance_id, woken.app)
            return []

    def apply_controls(self, instance_id: str) -> None:
        """Apply a just-delivered terminate or suspend at once, here.

        Neither needs the workflow's code, and a step message would queue behind the app's backlog
        of activities, which keep starting meanwhile. When the pending events do need the code (a
        resume, or new results after one) and this engine lacks it, the step goes to the app's queue."""
        try:
            self.run_step(instance_id)
        except WorkflowNotRegisteredError:
            self.duties.publisher_wake(instance_id)

    def runs_here(self, app: str | None, workflow: str | None) -> bool:
        """Does this engine run the steps of ``workflow`` of ``app`` inline?"""
        return self.inline_steps and app == self.app_id and workflow in self.registry.workflows

    def wake(self, instance_id: str, app: str | None, workflow: str | None = None,
             prefetched: Snapshot | None = None) -> None:
        """Someone must run a step for ``instance_id``: here and now when this pool serves it."""
        if app is None:
            meta = self.store.get_meta(instance_id)
            if meta is None:
                return
            app, workflow = meta.app, meta.name
        if self.runs_here(app, workflow):
            try:
                self.run_step(instance_id, prefetched)
            except WorkflowNotRegisteredError:  # a workflow version this pool lacks: another pool's step
                self.outgoing.send_step(instance_id, app)
        else:
            self.outgoing.send_step(instance_id, app)

    # -- the outbox (worker/dispatch.py) --------------------------------------------------------------
    def publish_outbox(self, instance_id: str, entries: dict[str, bytes]) -> None:
        self.dispatch.publish_outbox(instance_id, entries)

    def publish(self, record: Dispatch) -> None:
        self.dispatch.publish(record)

    def publishing(self) -> AbstractContextManager[None]:
        """The publisher's batch context (one producer for many messages)."""
        return self.outgoing.batch()

    # -- activities (worker/activities.py) ------------------------------------------------------------
    def run_activity(self, rec: ActivityRecord, *, redelivered: bool = False) -> list[FailureDetails]:
        """Run the attempt of one activity message and deliver its outcome; returns its failure, if
        it failed (delivered already: the message's task reports it to Celery)."""
        with self._handling([rec["id"]], redelivered):
            if self.flow.limits_activity(rec["name"]) and not self.flow.admit_activities([rec]):
                return []  # over a limit: it waits in the store (worker/flow.py)
            try:
                outcome = activities.run_one(self, rec)
            finally:
                if self.flow.limits_activity(rec["name"]):
                    self.flow.finished_activities([rec])
            if outcome is not None and outcome.woken is not None:
                woken = outcome.woken
                self.wake(woken.instance_id, woken.app, woken.workflow, woken.snapshot)
        return [outcome.failure] if outcome is not None and outcome.failure is not None else []

    def run_activities(self, batch: list[ActivityRecord], *, redelivered: bool = False) -> list[FailureDetails]:
        """Run the attempts of a batch message (a wide fan-out) and deliver their outcomes; returns
        the failures among them."""
        if any(self.flow.limits_activity(rec["name"]) for rec in batch):
            # One at a time through the gate: a process holds at most one slot of a limit at once.
            return [failure for rec in batch for failure in self.run_activity(rec, redelivered=redelivered)]
        with self._handling([rec["id"] for rec in batch], redelivered):
            outcomes = activities.run_batch(self, batch)
        return [o.failure for o in outcomes if o.failure is not None]

    @contextmanager
    def _handling(self, instance_ids: list[str], redelivered: bool) -> Iterator[None]:
        """While a step or activity message runs: the budget and hop count of its eager activities. A
        redelivered message means the process that ran it before may have died mid-way through an
        eager activity, which had no message of its own: afterwards, queue those still awaited."""
        self.budget.begin()
        try:
            yield
        finally:
            self.budget.end()
        if redelivered and self.budget.eager_hops:
            for instance_id in dict.fromkeys(instance_ids):
                self.duties.requeue_eager(instance_id)

    def message_seconds(self) -> float | None:
        """How long this thread has been running its current step or activity message; None outside one."""
        return self.budget.elapsed()

    def over_budget(self) -> bool:
        """Has the current message run past ``message_budget_seconds``?"""
        return self.budget.over()

    def _may_run_eagerly(self, record: ActivityRecord) -> bool:
        """Run this step's one activity here after the commit? Only inside a step or activity message of
        this pool, for an activity it serves, within the hops and the budget (worker/budget.py)."""
        if record["app"] != self.app_id or record["name"] not in self.registry.activities:
            return False
        if self.flow.limits_activity(record["name"]):
            return False  # a limited activity passes the flow gate with its own message
        return self.budget.take_eager_hop()

    def deliver_attempt(self, rec: ActivityRecord, result: Any, failure: FailureDetails | None,
                        *, inline: bool = True) -> None:
        woken = activities.deliver(self, rec, result, failure, inline=inline)
        if woken is not None:
            self.wake(woken.instance_id, woken.app, woken.workflow, woken.snapshot)

    # -- background duties (worker/duties.py) ---------------------------------------------------------
    def fire_due_timers(self, limit: int = 1000) -> int:
        """Due durable timers and scheduled starts, then due schedules (each a duty of every pool)."""
        return self.duties.fire_due_timers(limit) + self.schedule_firer.fire_due() + self.flow.publish_delayed()

    def publisher_wake(self, instance_id: str) -> None:
        self.duties.publisher_wake(instance_id)

    def sweep(self) -> tuple[int, int]:
        swept = self.duties.sweep()
        self.flow.sweep(self.duties.stale_after_ms)
        self.retention.sweep()  # what is due, shard by shard (worker/retention.py)
        return swept

    # Settings under the names callers have read them by.
    @property
    def eager_activity_hops(self) -> int:
        return self.budget.eager_hops

    @property
    def history_warn_events(self) -> int:
        return self.settings.history_warn_events

    @property
    def stale_after_ms(self) -> int:
        return self.duties.stale_after_ms

    @property
    def redeliver_after_ms(self) -> int:
        return self.duties.redeliver_after_ms


__all__ = ["CachedExecution", "Engine", "ExecutionCache", "MAX_STEP_ROUNDS", "Publisher", "now_ms"]
