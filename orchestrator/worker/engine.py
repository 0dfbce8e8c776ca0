"""The engine: runs orchestration steps and activities against the store.

A step loads the instance, replays it with the inbox events it consumes, and commits the outcome in
one atomic script. Messages the publisher can build (activities, when the broker is the store's
Redis) are pushed by that script; the other dispatches (the outbox) are published after it.
Publishing goes through a ``Publisher`` (Celery in production), so this module knows nothing of the
transport. Running activity attempts is worker/activities.py.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from .. import metrics
from ..codec import pack_event
from ..core.errors import FailureDetails, NonDeterminismError, WorkflowNotRegisteredError
from ..core.history import (
    ChildCompleted,
    ChildFailed,
    ChildScheduled,
    ContinuedAsNew,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    HistoryFormatError,
    PatchMarker,
    StepStarted,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from ..core.payload import DEFAULT_MAX_PAYLOAD_BYTES
from ..core.registry import Registry
from ..core.replay import WorkflowExecution
from ..core.vocabulary import CONTROL_TOKEN, TERMINAL, Status, event_token, task_token
from ..store import records
from ..store.records import ActivityRecord
from ..store.redis_store import DUPLICATE, WAKE, Commit, RedisStore, Snapshot
from . import activities, recovery
from .circuit import CircuitBreaker
from .guards import oversized_decision, parse_timer_member
from .recovery import activity_record

log = logging.getLogger("orchestrator.engine")
MAX_STEP_ROUNDS = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


class Publisher(Protocol):
    """How messages leave the engine. A publisher may also offer ``activity_message(records, app_id)``
    and ``step_message(instance_id, app_id)``, returning ``(queue key, message bytes)`` (or None) for
    the commit and create scripts to push themselves (see worker/envelope.py); and ``batch()``, a
    context holding one connection for many sends."""

    def send_step(self, instance_id: str, app_id: str) -> None: ...

    def send_activity(self, record: ActivityRecord, app_id: str) -> None: ...


class Engine:
    def __init__(self, store: RedisStore, registry: Registry, publisher: Publisher, app_id: str,
                 *, inline_steps: bool = True, stale_after: float = 15.0,
                 clock: Callable[[], int] = now_ms, circuit: CircuitBreaker | None = None,
                 replay_cache_size: int = 1000, redeliver_after: float = 3600.0,
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, history_warn_events: int = 10_000,
                 activity_batch_size: int = 1, fanout_parallelism: int = 128,
                 message_budget_seconds: float = 0.5, eager_activity_hops: int = 0) -> None:
        self.store = store
        # Eager activities (worker/activities.py): how many in a row one message may run; 0: never.
        self.eager_activity_hops = eager_activity_hops
        self._message = threading.local()  # the Celery message this thread is running (see handling)
        # Wide fan-outs travel several activities per message (worker/activities.py); 1: never.
        self.activity_batch_size = activity_batch_size
        self.fanout_parallelism = fanout_parallelism
        self.message_budget_seconds = message_budget_seconds
        # An activity attempt silent this long (not started since dispatch, or not finished since it
        # started) is published again: the setting visibility_timeout, kombu's own redelivery delay.
        self.redeliver_after_ms = int(redeliver_after * 1000)
        self.max_payload_bytes = max_payload_bytes
        self.history_warn_events = history_warn_events
        self.executions = ExecutionCache(replay_cache_size)
        self.circuit = circuit  # None or disabled: every attempt runs
        self.registry = registry
        self.publisher = publisher
        self._activity_message = getattr(publisher, "activity_message", None)
        self._step_message = getattr(publisher, "step_message", None)
        self.app_id = app_id
        self.inline_steps = inline_steps
        self.stale_after_ms = int(stale_after * 1000)
        self.clock = clock

    # -- orchestration step ---------------------------------------------------------------------
    def run_step(self, instance_id: str, prefetched: Snapshot | None = None) -> None:
        """Bring the instance up to date with its inbox. Safe to run twice at once: the commit's
        version check lets exactly one of them take effect and the other re-reads.

        ``prefetched``: the snapshot the waking delivery returned, used if it still fits the cache.
        An activity the step kept for eager execution runs here once the step is committed."""
        eager: list[ActivityRecord] = []
        self._step_rounds(instance_id, prefetched, eager)
        for record in eager:
            activities.run_one(self, record)

    def _step_rounds(self, instance_id: str, prefetched: Snapshot | None, eager: list[ActivityRecord]) -> None:  # noqa: C901 (to split)
        for _ in range(MAX_STEP_ROUNDS):
            began = time.perf_counter()
            cached = self.executions.take(instance_id)
            try:
                after = cached.version if cached else None
                snap = prefetched if prefetched is not None and prefetched.after_version == after else \
                    self.store.load(instance_id, after)
                prefetched = None
                if snap is not None and cached and (cached.generation != snap.meta.generation
                                                    or cached.version > snap.meta.version):
                    cached = None  # continued as new, or purged and recreated: start from scratch
                    snap = self.store.load(instance_id)
            except HistoryFormatError as err:
                if recovery.fail_unreadable(self, instance_id, err):
                    continue
                return
            if snap is None:
                return
            decision = None if snap.meta.is_terminal or not snap.inbox else self._decide(snap, cached)
            if decision is None:
                self.executions.put_back(instance_id, cached)
                if self.store.release(instance_id):
                    continue
                return
            commit, execution = decision
            commit.name, commit.old_status = snap.meta.name, snap.meta.status
            result = self.store.commit(instance_id, commit)
            if result.gone:
                return
            if not result.ok:
                log.debug("step of %s lost the race at version %s; retrying", instance_id, commit.version)
                metrics.record_step_conflict(self.store, snap.meta.name)
                continue
            # History size after this step: what the cached entry knew, plus what was read, plus the new entry.
            history_events = (
                0 if commit.reset else (cached.events if cached else 0) + len(snap.history) + len(commit.events)
            )
            if execution is None:
                if commit.status not in TERMINAL:
                    self.executions.put_back(instance_id, cached)  # code did not run: replay still holds
            elif not (execution.finished or commit.reset):
                execution.committed()
                self.executions.put(instance_id, execution, result.version, history_events)
            log.info("step committed", extra={"instance_id": instance_id, "workflow": snap.meta.name,
                                              "version": result.version, "status": commit.status})
            metrics.record_step(self.store, snap.meta.name, snap.meta.status, commit.status,
                                time.perf_counter() - began, inbox_events=len(snap.inbox),
                                history_events=history_events)
            recovery.warn_history_size(self, snap.meta.name, instance_id, history_events, len(commit.events))
            self.publish_outbox(instance_id, commit.outbox)
            if commit.eager is not None:
                eager.append(commit.eager)
            if not result.rerun:
                return
        log.warning("instance %s still had work after %d rounds; leaving it to the sweeper",
                    instance_id, MAX_STEP_ROUNDS)

    def apply_controls(self, instance_id: str) -> None:
        """Apply a just-delivered terminate or suspend at once, here.

        Neither needs the workflow's code, and a step message would queue behind the app's backlog
        of activities, which keep starting meanwhile. When the pending events do need the code (a
        resume, or new results after one) and this engine lacks it, the step goes to the app's queue."""
        try:
            self.run_step(instance_id)
        except WorkflowNotRegisteredError:
            self.publisher_wake(instance_id)

    def _decide(self, snap: Snapshot, cached: CachedExecution | None) -> tuple[Commit, WorkflowExecution | None] | None:  # noqa: C901 (to split)
        """The step's commit, and the replayed execution when the workflow's code ran."""
        meta, now = snap.meta, self.clock()
        events = [entry.event for entry in snap.inbox]
        terminate = next((e for e in events if isinstance(e, ExecutionTerminated)), None)
        if terminate is not None:
            return self._terminate(snap, terminate, now), None
        suspended = meta.status == Status.SUSPENDED
        for event in events:
            if isinstance(event, (ExecutionSuspended, ExecutionResumed)):
                suspended = isinstance(event, ExecutionSuspended)
        if suspended:
            # Consume only suspend/resume: everything else waits in the inbox until resumed.
            controls = [e for e in snap.inbox if isinstance(e.event, (ExecutionSuspended, ExecutionResumed))]
            if not controls:
                return None
            return Commit(version=meta.version, now=now, status=Status.SUSPENDED, keep_wait=True,
                          consumed=[e.entry_id for e in controls],
                          events=[StepStarted(ts=now)] + [e.event for e in controls]), None
        if cached is None:
            workflow, events = self._workflow_for(meta, snap.history, events)
        new: list[HistoryEvent] = [StepStarted(ts=now), *events]
        execution = cached.execution if cached else WorkflowExecution(workflow, meta.instance_id, meta.generation)
        try:
            execution.catch_up(snap.history)  # only what was recorded since `cached` was taken
            outcome = execution.step(new)
        except NonDeterminismError as err:
            log.error("%s", err, extra={"instance_id": meta.instance_id, "workflow": meta.name})
            failure = FailureDetails(str(err), "NonDeterminismError", None)
            # History stays exactly as it was; the inbox too, so nothing delivered is lost.
            commit = Commit(version=meta.version, now=now, status=Status.FAILED, keep_wait=True,
                            fields=records.finished_fields(now, failure=failure))
            self._notify_parent(meta, commit, ok=False, value=failure)
            return commit, None
        too_big = oversized_decision(meta.name, outcome, self.max_payload_bytes)
        if too_big is not None:
            # As if the workflow had raised PayloadError at this step: the oversized value is not stored.
            log.error("%s; failing instance %s", too_big, meta.instance_id,
                      extra={"instance_id": meta.instance_id, "workflow": meta.name})
            failure = FailureDetails(too_big, "PayloadError", None)
            commit = Commit(version=meta.version, now=now, status=Status.FAILED,
                            consumed=[e.entry_id for e in snap.inbox],
                            events=new + [ExecutionCompleted(ts=now, status=Status.FAILED, failure=failure)],
                            fields=records.finished_fields(now, failure=failure))
            self._notify_parent(meta, commit, ok=False, value=failure)
            return commit, None
        commit = Commit(version=meta.version, now=now, status=Status.RUNNING,
                        consumed=[e.entry_id for e in snap.inbox])
        for event in events:
            if isinstance(event, ExecutionStarted) and event.version is not None:
                commit.fields.update(records.workflow_version_fields(event.version))
        if outcome.custom_status is not None:
            commit.fields.update(records.custom_status_fields(outcome.custom_status))
        completion = outcome.completion
        if isinstance(completion, ContinuedAsNew):
            # Fresh history, same id: the new generation starts from the inbox, like a new instance.
            commit.reset = True
            commit.fields.update(records.input_fields(completion.input))
            restart = ExecutionStarted(ts=now, name=meta.name, input=completion.input)
            commit.inbox_add = [(CONTROL_TOKEN, pack_event(restart))]
            commit.inbox_add += [(event_token(e.name), pack_event(e)) for e in outcome.carryover]
            return commit, execution
        commit.events = new + outcome.actions
        scheduled: list[ActivityRecord] = []
        for action in outcome.actions:
            self._plan_action(meta, action, commit, scheduled)
        self._dispatch_activities(scheduled, commit)
        # Timed-out attempts and disarmed timeout timers: their late deliveries are dropped by the store.
        commit.drop_tasks = [f"{meta.generation}.{seq}" for seq in outcome.abandoned]
        if completion is not None:
            commit.events.append(completion)
            commit.status = completion.status
            if completion.status == Status.COMPLETED:
                commit.fields.update(records.finished_fields(now, output=completion.result))
                self._notify_parent(meta, commit, ok=True, value=completion.result)
            else:
                commit.fields.update(records.finished_fields(now, failure=completion.failure))
                self._notify_parent(meta, commit, ok=False, value=completion.failure)
        elif outcome.wait is not None:
            commit.wait_mode, commit.wait_tokens = outcome.wait.mode, list(outcome.wait.tokens)
        return commit, execution

    def _workflow_for(self, meta: Any, history: list[HistoryEvent],
                      events: list[HistoryEvent]) -> tuple[Callable[..., Any], list[HistoryEvent]]:
        """The function of the workflow version the instance runs. A first step (its ExecutionStarted
        still in the inbox, without a version) takes the latest version and records it there."""
        started = next((e for e in history if isinstance(e, ExecutionStarted)), None)
        if started is None:
            for i, event in enumerate(events):
                if isinstance(event, ExecutionStarted):
                    latest = self.registry.latest_version(meta.name)
                    if event.version is None and latest is not None:
                        event = dataclasses.replace(event, version=latest)
                        events = [*events[:i], event, *events[i + 1:]]
                    started = event
                    break
        version = started.version if started is not None else None
        workflow = self.registry.workflow(meta.name, version)
        if workflow is None:
            if meta.name in self.registry.workflows:
                wanted = f"version {version!r}" if version is not None else \
                    "unversioned (it started before versions were registered; register its function without a version)"
                raise WorkflowNotRegisteredError(
                    f"workflow {meta.name!r} of instance {meta.instance_id!r} runs {wanted}, which is not "
                    f"registered in app {self.app_id!r} (registered: {self.registry.describe_versions(meta.name)}); "
                    "the step stays queued for a pool that registers it")
            raise WorkflowNotRegisteredError(
                f"workflow {meta.name!r} of instance {meta.instance_id!r} is not registered in app "
                f"{self.app_id!r}; the step stays queued for a pool that registers it"
            )
        return workflow, events

    def _plan_action(self, meta: Any, action: HistoryEvent, commit: Commit, scheduled: list[ActivityRecord]) -> None:
        if isinstance(action, PatchMarker):
            return  # recorded in history only: nothing to dispatch
        key = f"{meta.generation}.{action.seq}"  # type: ignore[attr-defined]
        if isinstance(action, TaskScheduled):
            commit.tasks.append(key)
            commit.activities.append(key)
            scheduled.append(activity_record(meta, action))
        elif isinstance(action, TimerCreated):
            commit.tasks.append(key)
            commit.timers.append(
                (action.fire_at, self.store.timer_member(meta.instance_id, meta.generation, action.seq))
            )
        elif isinstance(action, ChildScheduled):
            commit.tasks.append(key)
            commit.children.append(action.instance_id)
            commit.outbox[key] = records.pack_dispatch(
                records.child_start(meta, key, action.instance_id, action.name, action.input, action.app_id))

    def _dispatch_activities(self, scheduled: list[ActivityRecord], commit: Commit) -> None:
        """Activity messages ride in the commit when the publisher can build them (a wide fan-out
        packed several per message); otherwise each attempt goes through the outbox."""
        if len(scheduled) == 1 and self._may_run_eagerly(scheduled[0]):
            commit.eager = scheduled[0]  # run here after the commit (run_step), not queued
            return
        by_app: dict[str, list[ActivityRecord]] = {}
        for record in scheduled:
            by_app.setdefault(record["app"], []).append(record)
        for app, group in by_app.items():
            for batch in activities.batches(group, self.fanout_parallelism, self.activity_batch_size):
                message = self._activity_message(batch, app) if self._activity_message else None
                if message is not None:
                    commit.pushes.setdefault(message[0], []).append(message[1])
                    continue
                for record in batch:
                    commit.outbox[records.activity_task_key(record)] = records.pack_dispatch(record)

    def _terminate(self, snap: Snapshot, request: ExecutionTerminated, now: int) -> Commit:
        meta = snap.meta
        commit = Commit(version=meta.version, now=now, status=Status.TERMINATED,
                        consumed=[e.entry_id for e in snap.inbox],
                        events=[StepStarted(ts=now)] + [e.event for e in snap.inbox],
                        fields=records.finished_fields(now, output=request.output))
        if request.recursive:
            # Every child ever started (the snapshot may hold only recent history); finished ones
            # simply refuse the terminate.
            for child in self.store.child_ids(meta.instance_id):
                commit.outbox[records.terminate_id(child)] = records.pack_dispatch(
                    records.child_terminate(child, request.output, meta.instance_id))
        failure = FailureDetails(f"workflow {meta.instance_id!r} was terminated", "WorkflowTerminatedError")
        self._notify_parent(meta, commit, ok=False, value=failure)
        return commit

    @staticmethod
    def _notify_parent(meta: Any, commit: Commit, ok: bool, value: Any) -> None:
        if not meta.parent:
            return
        commit.outbox[records.PARENT_NOTICE_ID] = records.pack_dispatch(records.parent_notice(meta, ok, value))

    # -- after commit: the outbox ---------------------------------------------------------------
    def publish_outbox(self, instance_id: str, entries: dict[str, bytes]) -> None:
        if not entries:
            return
        with self.publishing():
            for record in entries.values():
                self._publish(records.unpack_dispatch(record))
        self.store.ack_outbox(instance_id, entries.keys())

    def publishing(self) -> Any:
        """The publisher's batch context (one producer for many messages), if it has one."""
        batch = getattr(self.publisher, "batch", None)
        return batch() if batch is not None else nullcontext()

    def _publish(self, rec: records.Dispatch) -> None:
        kind, now = rec["k"], self.clock()
        if kind == "a":
            self.publisher.send_activity(rec, rec["app"])
        elif kind == "c":
            started = ExecutionStarted(ts=now, name=rec["name"], input=rec["input"])
            step = self._step_message(rec["child"], rec["app"]) if self._step_message else None
            code, _status = self.store.create_instance(
                rec["child"], rec["name"], rec["app"], started, rec["input"], now,
                parent=rec["id"], parent_key=rec["key"], parent_app=rec["papp"], parent_run=rec.get("prun", ""),
                step_message=step,
            )
            if code == WAKE and step is None:
                self.publisher.send_step(rec["child"], rec["app"])
            elif code == -1:
                # Someone else's instance is not our child: recursive terminate/purge must not reach it.
                holder = self.store.get_meta(rec["child"])
                if holder is not None and holder.parent != rec["id"]:
                    self.store.forget_child(rec["id"], rec["child"])
                failure = FailureDetails(
                    f"child instance id {rec['child']!r} is already taken", "InstanceAlreadyExistsError"
                )
                self._deliver_child_result(rec["id"], rec["key"], rec["papp"], False, failure, now)
        elif kind == "p":
            value = rec["value"] if rec["ok"] else FailureDetails.from_list(rec["value"])
            self._deliver_child_result(rec["id"], rec["key"], rec["app"], rec["ok"], value, now)
        elif kind == "t":
            child = self.store.get_meta(rec["id"])
            if child is None or ("parent" in rec and child.parent != rec["parent"]):
                return  # gone, or an id that was never this parent's child
            code = self.store.deliver(rec["id"], ExecutionTerminated(ts=now, output=rec["output"], recursive=True),
                                      token=CONTROL_TOKEN, now=now, control=True)
            if code > DUPLICATE:  # stored, whoever holds the step: terminate the child now, here
                self.apply_controls(rec["id"])

    def _deliver_child_result(self, parent: str, key: str, app: str, ok: bool, value: Any, now: int) -> None:
        seq = int(key.rpartition(".")[2])
        event = ChildCompleted(ts=now, seq=seq, result=value) if ok else ChildFailed(ts=now, seq=seq, failure=value)
        code = self.store.deliver(parent, event, token=task_token(seq), task_key=key, now=now, failure=not ok)
        if code == WAKE:
            self.wake(parent, app)

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
                self.publisher.send_step(instance_id, app)
        else:
            self.publisher.send_step(instance_id, app)

    # -- activities (worker/activities.py) --------------------------------------------------------
    def run_activity(self, rec: ActivityRecord, *, redelivered: bool = False) -> None:
        """Run the attempt of one activity message and deliver its outcome."""
        with self._handling([rec], redelivered):
            activities.run_one(self, rec)

    def run_activities(self, records: list[ActivityRecord], *, redelivered: bool = False) -> None:
        """Run the attempts of a batch message (a wide fan-out) and deliver their outcomes."""
        with self._handling(records, redelivered):
            activities.run_batch(self, records)

    @contextmanager
    def _handling(self, records: list[ActivityRecord], redelivered: bool) -> Iterator[None]:
        """While an activity message runs: the budget and hop count of its eager activities. A
        redelivered message means the process that ran it before may have died mid-way through an
        eager activity, which had no message of its own: afterwards, queue those still awaited."""
        message = self._message
        message.started, message.hops = time.monotonic(), 0
        try:
            yield
        finally:
            message.started = None
        if redelivered and self.eager_activity_hops:
            for instance_id in dict.fromkeys(rec["id"] for rec in records):
                recovery.requeue_eager(self, instance_id)

    def message_seconds(self) -> float | None:
        """How long this thread has been running its current activity message; None outside one."""
        started = getattr(self._message, "started", None)
        return None if started is None else time.monotonic() - started

    def over_budget(self) -> bool:
        """Has the current message run past ``message_budget_seconds`` (batches and eager runs yield then)?"""
        elapsed = self.message_seconds()
        return elapsed is not None and elapsed > self.message_budget_seconds

    def _may_run_eagerly(self, record: ActivityRecord) -> bool:
        message = self._message
        if not self.eager_activity_hops or self.message_seconds() is None:
            return False  # off, or not inside an activity message (a step message, a sweeper, a client)
        if message.hops >= self.eager_activity_hops or self.over_budget():
            return False
        if record["app"] != self.app_id or record["name"] not in self.registry.activities:
            return False
        message.hops += 1
        return True

    def deliver_attempt(self, rec: ActivityRecord, result: Any, failure: FailureDetails | None,
                        *, inline: bool = True) -> None:
        activities.deliver(self, rec, result, failure, inline=inline)

    # -- background duties (any pool may run them; all are safe to run concurrently) -------------
    def fire_due_timers(self, limit: int = 1000) -> int:
        now, fired = self.clock(), 0
        for member in self.store.due_timers(now, limit):
            parsed = parse_timer_member(member)
            if parsed is None:
                # Not written by this engine: report it and take it out, or every poll would stop here.
                log.error("dropped malformed timer index entry %r (expected '<instance id>|<gen>.<seq>' "
                          "or '<instance id>|start')", member)
                self.store.drop_timer(member)
                continue
            key = parsed[1]
            event = None if key == "start" else TimerFired(ts=now, seq=int(key.rpartition(".")[2]))
            instance_id, code = self.store.fire_timer(member, event, now)
            fired += code >= 0
            if code == WAKE:
                self.publisher_wake(instance_id)  # the poller thread only publishes; steps run in the pool
        return fired

    def publisher_wake(self, instance_id: str) -> None:
        meta = self.store.get_meta(instance_id)
        if meta is not None:
            self.publisher.send_step(instance_id, meta.app)

    def sweep(self) -> tuple[int, int]:
        """Republish what a crash left behind: unpublished outboxes and instances whose step never ran."""
        now = self.clock()
        cutoff = now - self.stale_after_ms
        self.store.pool_heartbeat(self.app_id, now)
        outboxes = self.store.claim_stale("outbox", cutoff, now)
        for instance_id in outboxes:
            self.publish_outbox(instance_id, self.store.read_outbox(instance_id))
        ready = self.store.claim_stale("ready", cutoff, now)
        live = self.store.live_apps(now - 3 * self.stale_after_ms) | {self.app_id} if ready else set()
        for instance_id in ready:
            meta = self.store.get_meta(instance_id)
            # An app with no live pool still has the step message it was first sent, queued for the
            # pool to come; sending another every sweep would pile up copies for as long as it is down.
            if meta is not None and meta.app in live:
                self.publisher.send_step(instance_id, meta.app)
        recovery.redeliver_silent_activities(self, now)
        return len(outboxes), len(ready)


@dataclass
class CachedExecution:
    execution: WorkflowExecution
    version: int
    events: int = 0  # history events up to ``version`` (the history size the metrics and warnings report)

    @property
    def generation(self) -> int:
        return self.execution.generation


class ExecutionCache:
    """Replayed workflows this process holds between steps, least recently used evicted first.

    ``take`` removes the entry, so two threads never advance one generator; a step that fails in
    any way simply does not put it back, and the next step replays from the start."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, CachedExecution] = OrderedDict()
        self._lock = threading.Lock()

    def version_of(self, instance_id: str) -> int | None:
        """The history version of the entry held for ``instance_id``, without taking it."""
        with self._lock:
            entry = self._entries.get(instance_id)
            return entry.version if entry is not None else None

    def take(self, instance_id: str) -> CachedExecution | None:
        with self._lock:
            return self._entries.pop(instance_id, None)

    def put(self, instance_id: str, execution: WorkflowExecution, version: int, events: int = 0) -> None:
        self.put_back(instance_id, CachedExecution(execution, version, events))

    def put_back(self, instance_id: str, entry: CachedExecution | None) -> None:
        if entry is None or self.size <= 0:
            return
        with self._lock:
            self._entries[instance_id] = entry
            self._entries.move_to_end(instance_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


__all__ = ["Engine", "Publisher"]
