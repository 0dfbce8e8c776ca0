"""The step planner: from an instance's snapshot (and its replayed workflow, when cached) to the one
commit that records the step. It runs the workflow's code through the pure core and writes nothing;
the step loop (worker/steps.py) commits what it returns.

Controls come first and need no code: a terminate ends the instance (and, recursively, its
children); while suspended only suspend / resume are consumed, everything else waits in the inbox.
Then the code runs; a ``NonDeterminismError`` fails the instance leaving history and inbox as they
were; a decided value over ``max_payload_bytes`` fails it as if the workflow had raised
``PayloadError``. What the step decided becomes task keys, timers, children and dispatch records;
the activities go to ``route_activities`` (worker/dispatch.py), which puts them in the commit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ..codec import pack_event
from ..core.errors import FailureDetails, NonDeterminismError, WorkflowNotRegisteredError, WorkflowStepDeadlineError
from ..core.history import (
    ChildScheduled,
    ContinuedAsNew,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    PatchMarker,
    StepStarted,
    TaskScheduled,
    TimerCreated,
    event_to_dict,
)
from ..core.propagation import propagated_payload
from ..core.registry import Registry
from ..core.replay import StepResult, WorkflowExecution
from ..core.vocabulary import CONTROL_TOKEN, Status, belongs_to, event_token, member, token_task_key
from ..store import records
from ..store.records import ActivityRecord, InstanceMeta
from ..store.step_io import Commit, InboxEntry, Snapshot
from .cache import CachedExecution
from .deadline import StepDeadline, check_determinism
from .guards import unstorable_decision

log = logging.getLogger("orchestrator.engine")

Decision = tuple[Commit, WorkflowExecution | None]  # the commit, and the execution when the code ran


def notify_parent(meta: InstanceMeta, commit: Commit, ok: bool, value: Any) -> None:
    """A child that ends tells its parent, through the outbox of the commit that ends it."""
    if meta.parent:
        commit.outbox[records.PARENT_NOTICE_ID] = records.pack_dispatch(records.parent_notice(meta, ok, value))


def failed_commit(meta: InstanceMeta, now: int, failure: FailureDetails) -> Commit:
    """Fail the instance without consuming or recording anything (history and inbox stay as they are)."""
    commit = Commit(version=meta.version, now=now, status=Status.FAILED, keep_wait=True,
                    fields=records.finished_fields(now, failure=failure), name=meta.name, old_status=meta.status)
    notify_parent(meta, commit, ok=False, value=failure)
    return commit


class StepPlanner:
    """Plans steps for the workflows of ``registry`` (an empty one plans controls only)."""

    def __init__(self, registry: Registry, app_id: str, clock: Callable[[], int], max_payload_bytes: int,
                 child_ids: Callable[[str], list[str]],
                 route_activities: Callable[[list[ActivityRecord], Commit], None], *,
                 history_of: Callable[[str], list[HistoryEvent]] | None = None,
                 deadline: StepDeadline | None = None, strict_determinism: bool = False) -> None:
        self.deadline = deadline or StepDeadline(0)
        self.strict_determinism = strict_determinism
        self.registry = registry
        self.app_id = app_id
        self.clock = clock
        self.max_payload_bytes = max_payload_bytes
        self.child_ids = child_ids  # every child an instance started (recursive terminate)
        self.route_activities = route_activities
        self.history_of = history_of  # an instance's whole history (only read for history propagation)

    def decide(self, snap: Snapshot, cached: CachedExecution | None) -> Decision | None:
        """The step's commit, or None when the inbox holds nothing this step may consume."""
        meta, now = snap.meta, self.clock()
        events = [entry.event for entry in snap.inbox if self._current(meta, entry)]
        terminate = next((e for e in events if isinstance(e, ExecutionTerminated)), None)
        if terminate is not None:
            return self.terminate(snap, terminate, now), None
        if self._suspended(meta, events):
            commit = self.suspend(snap, now)
            return (commit, None) if commit is not None else None
        if meta.status == Status.SUSPENDED and meta.name not in self.registry.workflows:
            # A resume applied without the code (the client's controller): record it, so the instance
            # reads RUNNING when resume_workflow returns (Dapr's), and leave the rest to the app's step.
            commit = self.suspend(snap, now)
            if commit is not None:
                not_started = any(isinstance(e.event, ExecutionStarted) for e in snap.inbox)  # never stepped yet
                commit.status = Status.PENDING if not_started else Status.RUNNING
                return commit, None
        return self._run_code(snap, cached, events, now)

    @staticmethod
    def _current(meta: InstanceMeta, entry: InboxEntry) -> bool:
        """Does this inbox entry belong to the instance's run and generation? A result delivered while
        a continue-as-new step was being decided belongs to the generation before: the step consumes
        it without applying it, so it cannot resolve the new generation's call of the same number."""
        key = token_task_key(entry.token)
        if key is None or belongs_to(key, meta.run, meta.generation):
            return True
        log.info("dropped %s of an earlier run or generation (task %s) of %s", entry.event.kind, key,
                 meta.instance_id, extra={"instance_id": meta.instance_id, "workflow": meta.name})
        return False

    # -- controls ----------------------------------------------------------------------------------
    @staticmethod
    def _suspended(meta: InstanceMeta, events: list[HistoryEvent]) -> bool:
        suspended = meta.status == Status.SUSPENDED
        for event in events:
            if isinstance(event, (ExecutionSuspended, ExecutionResumed)):
                suspended = isinstance(event, ExecutionSuspended)
        return suspended

    @staticmethod
    def suspend(snap: Snapshot, now: int) -> Commit | None:
        """Consume only suspend/resume: everything else waits in the inbox until resumed."""
        controls = [e for e in snap.inbox if isinstance(e.event, (ExecutionSuspended, ExecutionResumed))]
        if not controls:
            return None
        return Commit(version=snap.meta.version, now=now, status=Status.SUSPENDED, keep_wait=True,
                      consumed=[e.entry_id for e in controls],
                      events=[StepStarted(ts=now)] + [e.event for e in controls])

    def terminate(self, snap: Snapshot, request: ExecutionTerminated, now: int) -> Commit:
        meta = snap.meta
        commit = Commit(version=meta.version, now=now, status=Status.TERMINATED,
                        consumed=[e.entry_id for e in snap.inbox],
                        events=[StepStarted(ts=now)] + [e.event for e in snap.inbox],
                        fields=records.finished_fields(now, output=request.output))
        if request.recursive:
            # Every child ever started (the snapshot may hold only recent history); finished ones
            # simply refuse the terminate.
            for child in self.child_ids(meta.instance_id):
                commit.outbox[records.terminate_id(child)] = records.pack_dispatch(
                    records.child_terminate(child, request.output, meta))
        failure = FailureDetails(f"workflow {meta.instance_id!r} was terminated", "WorkflowTerminatedError")
        notify_parent(meta, commit, ok=False, value=failure)
        return commit

    # -- the workflow's code ---------------------------------------------------------------------------
    def _run_code(self, snap: Snapshot, cached: CachedExecution | None, events: list[HistoryEvent],
                  now: int) -> Decision:
        meta = snap.meta
        if cached is None:
            workflow, events = self.workflow_for(meta, snap.history, events)
            calls = check_determinism(workflow, meta.name)
            if calls and self.strict_determinism:
                failure = FailureDetails(
                    f"workflow {meta.name!r} calls {', '.join(calls)}, which return something else on every "
                    "replay (setting strict_determinism): use ctx.current_utc_datetime, or move it into an activity",
                    "NonDeterminismError", None)
                log.error("%s; failing instance %s", failure.message, meta.instance_id,
                          extra={"instance_id": meta.instance_id, "workflow": meta.name})
                return failed_commit(meta, now, failure), None
            execution = WorkflowExecution(workflow, meta.instance_id, meta.generation, meta.run,
                                          self.registry.interceptors)
        else:
            execution = cached.execution
        new: list[HistoryEvent] = [StepStarted(ts=now), *events]
        try:
            with self.deadline.watch(execution, meta.name):
                execution.catch_up(snap.history)  # only what was recorded since `cached` was taken
                outcome = execution.step(new)
        except NonDeterminismError as err:
            log.error("%s", err, extra={"instance_id": meta.instance_id, "workflow": meta.name})
            return failed_commit(meta, now, FailureDetails(str(err), "NonDeterminismError", None)), None
        except WorkflowStepDeadlineError as err:
            message = f"instance {meta.instance_id!r}: {err}"
            log.error("%s", message, extra={"instance_id": meta.instance_id, "workflow": meta.name})
            return failed_commit(meta, now, FailureDetails(message, "WorkflowStepDeadlineError", None)), None
        too_big = unstorable_decision(meta.name, outcome, self.max_payload_bytes)
        if too_big is not None:
            # As if the workflow had raised it at this step: the oversized value is not stored.
            log.error("%s; failing instance %s", too_big, meta.instance_id,
                      extra={"instance_id": meta.instance_id, "workflow": meta.name})
            failure = FailureDetails(str(too_big), type(too_big).__name__, None)
            commit = Commit(version=meta.version, now=now, status=Status.FAILED,
                            consumed=[e.entry_id for e in snap.inbox],
                            events=new + [ExecutionCompleted(ts=now, status=Status.FAILED, failure=failure)],
                            fields=records.finished_fields(now, failure=failure))
            notify_parent(meta, commit, ok=False, value=failure)
            return commit, None
        return self._record(snap, events, new, outcome, now), execution

    def _record(self, snap: Snapshot, events: list[HistoryEvent], new: list[HistoryEvent], outcome: StepResult,
                now: int) -> Commit:
        """The commit of a step whose code ran and decided ``outcome``."""
        meta = snap.meta
        commit = Commit(version=meta.version, now=now, status=Status.RUNNING, consumed=[e.entry_id for e in snap.inbox])
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
            restart = ExecutionStarted(ts=now, name=meta.name, input=completion.input, propagated=outcome.propagated)
            commit.inbox_add = [(CONTROL_TOKEN, pack_event(restart))]
            commit.inbox_add += [(event_token(e.name), pack_event(e)) for e in outcome.carryover]
            return commit
        # The step's StepStarted as replay stamped it: what its yields received (the execution picture).
        commit.events = [outcome.step_started or new[0], *new[1:], *outcome.actions]
        scheduled: list[ActivityRecord] = []
        for action in outcome.actions:
            self._plan_action(meta, action, commit, scheduled)
        for record in scheduled:  # an activity's own priority (flow control) overrides its workflow's
            policy = self.registry.activity_flow(record["name"])
            if policy is not None and policy.priority is not None:
                record["pr"] = policy.priority
        if outcome.propagation:
            self._propagate(meta, commit, scheduled, outcome)
        self.route_activities(scheduled, commit)
        # Timed-out attempts and disarmed timeout timers: their late deliveries are dropped by the store.
        commit.drop_tasks = [meta.task_key(seq) for seq in outcome.abandoned]
        if isinstance(completion, ExecutionCompleted):
            commit.events.append(completion)
            commit.status = completion.status
            if completion.status == Status.COMPLETED:
                commit.fields.update(records.finished_fields(now, output=completion.result))
                notify_parent(meta, commit, ok=True, value=completion.result)
            else:
                commit.fields.update(records.finished_fields(now, failure=completion.failure))
                notify_parent(meta, commit, ok=False, value=completion.failure)
        elif outcome.wait is not None:
            commit.wait_mode, commit.wait_tokens = outcome.wait.mode, list(outcome.wait.tokens)
        return commit

    def workflow_for(self, meta: InstanceMeta, history: list[HistoryEvent],
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
            raise WorkflowNotRegisteredError(self._not_registered(meta, version))
        return workflow, events

    def _not_registered(self, meta: InstanceMeta, version: str | None) -> str:
        if meta.name not in self.registry.workflows:
            return (f"workflow {meta.name!r} of instance {meta.instance_id!r} is not registered in app "
                    f"{self.app_id!r}; the step stays queued for a pool that registers it")
        wanted = f"version {version!r}" if version is not None else \
            "unversioned (it started before versions were registered; register its function without a version)"
        return (f"workflow {meta.name!r} of instance {meta.instance_id!r} runs {wanted}, which is not "
                f"registered in app {self.app_id!r} (registered: {self.registry.describe_versions(meta.name)}); "
                "the step stays queued for a pool that registers it")

    def _propagate(self, meta: InstanceMeta, commit: Commit, scheduled: list[ActivityRecord],
                   outcome: StepResult) -> None:
        """Attach the history the calls with ``propagation=`` hand on (core/propagation.py): this
        instance's own history up to and including this step, after what it received for LINEAGE."""
        past = self.history_of(meta.instance_id) if self.history_of is not None else []
        events = []
        for event in [*past, *commit.events]:
            record = event_to_dict(event)
            record.pop("propagated", None)  # its own received history travels as chunks of their own
            events.append(record)
        own = {"app_id": self.app_id, "instance_id": meta.instance_id, "workflow_name": meta.name, "events": events}
        for rec in scheduled:
            scope = outcome.propagation.get(rec["seq"])
            if scope is not None:
                rec["ph"] = propagated_payload(scope, own, outcome.propagated)  # type: ignore[typeddict-unknown-key]
        for seq, scope in outcome.propagation.items():
            key = meta.task_key(seq)
            start = records.unpack_dispatch(commit.outbox[key]) if key in commit.outbox else None
            if start is not None and start["k"] == "c":  # a child's start
                start["ph"] = propagated_payload(scope, own, outcome.propagated)  # type: ignore[typeddict-unknown-key]
                commit.outbox[key] = records.pack_dispatch(start)

    @staticmethod
    def _plan_action(meta: InstanceMeta, action: HistoryEvent, commit: Commit,
                     scheduled: list[ActivityRecord]) -> None:
        if isinstance(action, PatchMarker):
            return  # recorded in history only: nothing to dispatch
        if isinstance(action, TaskScheduled):
            key = meta.task_key(action.seq)
            commit.tasks.append(key)
            commit.activities.append(key)
            scheduled.append(records.activity_record(meta, action.seq, action.name, action.input, action.app_id,
                                                     action.attempt, action.heartbeat_ms, action.start_to_close_ms))
        elif isinstance(action, TimerCreated):
            key = meta.task_key(action.seq)
            commit.tasks.append(key)
            commit.timers.append((action.fire_at, member(meta.instance_id, key)))
        elif isinstance(action, ChildScheduled):
            key = meta.task_key(action.seq)
            commit.tasks.append(key)
            commit.children.append(action.instance_id)
            commit.outbox[key] = records.pack_dispatch(
                records.child_start(meta, key, action.instance_id, action.name, action.input, action.app_id))


__all__ = ["Decision", "StepPlanner", "failed_commit", "notify_parent"]
