"""Deterministic replay: history in, decisions out.

``replay(workflow, instance_id, past, new)`` runs the workflow generator from the start, feeds it the
results recorded in ``past`` (checking that the code asks for exactly what history recorded), then
applies the ``new`` events (the inbox events this step consumes, led by a ``StepStarted`` that carries
the step's timestamp) and returns what the step decided: new actions, the completion if any, the
custom status, and what the workflow now waits for. It is pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import dataclasses
import inspect
import zlib
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from .context import WorkflowContext
from .errors import FailureDetails, NonDeterminismError, TaskFailedError
from .history import (
    ChildCompleted,
    ChildFailed,
    ChildScheduled,
    ContinuedAsNew,
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    HistoryEvent,
    PatchMarker,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    task_ref,
)
from .interceptors import ExecuteWorkflowRequest, Interceptors, compose_runtime_chain, no_metadata
from .payload import coerce, from_payload, input_annotation, to_json_compatible
from .tasks import (
    ActivityTask,
    ChildWorkflowTask,
    CompletableTask,
    CompositeTask,
    ExternalEventTask,
    RetryableTask,
    Task,
    TimedEventTask,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
)
from .text import safe_repr
from .vocabulary import WAIT_ALL, WAIT_ANY, Status, event_key


@dataclass(frozen=True)
class WaitSpec:
    """What a blocked workflow waits for: ``all`` of the tokens, or ``any`` one of them."""

    mode: str
    tokens: tuple[str, ...]


@dataclass
class StepResult:
    actions: list[HistoryEvent] = field(default_factory=list)  # calls and timers, led by new PatchMarkers
    completion: ExecutionCompleted | ContinuedAsNew | None = None
    wait: WaitSpec | None = None
    custom_status: Any = None
    carryover: list[EventRaised] = field(default_factory=list)  # events kept across continue-as-new
    abandoned: list[int] = field(default_factory=list)  # seqs no longer awaited: drop their task keys
    propagation: dict[int, Any] = field(default_factory=dict)  # seq of a new call -> the history scope it hands on
    propagated: Any = None  # what this instance received (its ExecutionStarted's), for LINEAGE
    # The step's StepStarted stamped with what its yields received (``awaited``) and let go (``lost``):
    # the record to write in its place, so the execution picture is drawn from fact.
    step_started: StepStarted | None = None


def _describe(event: HistoryEvent) -> str:
    if isinstance(event, TaskScheduled):
        return f"activity {event.name!r} (call #{event.seq})"
    if isinstance(event, ChildScheduled):
        return f"child workflow {event.name!r} (call #{event.seq})"
    if isinstance(event, TimerCreated):
        what = {"retry": "a retry backoff timer", "timeout": "an activity timeout timer"}.get(event.purpose, "a timer")
        return f"{what} (call #{event.seq})"
    if isinstance(event, PatchMarker):
        return f"ctx.is_patched({event.name!r}) = True after call #{event.position}"
    return event.kind


class _Replayer:
    def __init__(self, workflow: Callable[..., Any], instance_id: str, generation: int, run: str = "",
                 interceptors: Interceptors | None = None) -> None:
        self.workflow = workflow
        self.ctx = WorkflowContext(instance_id, generation, run)
        self.runtime_interceptors = list(interceptors.runtime) if interceptors is not None else []
        if interceptors is not None:
            self.ctx._outbound = list(interceptors.outbound)
        self.name = "?"
        self.gen: Generator[Task[Any], Any, Any] | None = None
        self.blocked_on: Task[Any] | None = None
        self.completion: ExecutionCompleted | ContinuedAsNew | None = None
        self.position = 0
        self.step = 0  # orchestration steps (StepStarted batches) applied so far
        # Times the workflow code gave control back (each yield, return or raise): a watchdog that
        # sees it stand still knows the code is stuck between two yields (worker/deadline.py).
        self.yields = 0
        self.received: list[Task[Any]] = []  # tasks whose outcome the code's yields received this step
        self._event_index: dict[ExternalEventTask[Any], int] = {}  # waiter -> history index of its event
        self._buffered_index: dict[int, int] = {}  # id(buffered EventRaised) -> its history index

    # -- driving the generator ------------------------------------------------------------------
    def start(self, event: ExecutionStarted) -> None:
        self.name = event.name
        self.ctx._propagated = event.propagated
        try:
            result = self._execute(event)
        except BaseException as exc:  # noqa: BLE001 - the workflow's own failure (SystemExit too) is its outcome
            self._fail(exc)
            return
        finally:
            self.yields += 1
        if inspect.isgenerator(result):
            self.gen = cast("Generator[Task[Any], Any, Any]", result)  # what it yields is checked as it runs
            self._advance(None, None)
        else:
            self._complete(result)

    def _execute(self, event: ExecutionStarted) -> Any:
        """Call the workflow function (through the runtime interceptors, on every replay as in Dapr)."""
        takes_input = len(inspect.signature(self.workflow).parameters) != 1
        if not self.runtime_interceptors:
            if not takes_input:
                return self.workflow(self.ctx)
            return self.workflow(self.ctx, coerce(input_annotation(self.workflow), from_payload(event.input)))

        def call(request: ExecuteWorkflowRequest[Any]) -> Any:
            no_metadata(request, f"execution of workflow {self.name!r}")
            if not takes_input:
                return self.workflow(request.ctx)
            return self.workflow(request.ctx, coerce(input_annotation(self.workflow), request.input))

        chain = compose_runtime_chain(self.runtime_interceptors, call)
        return chain(ExecuteWorkflowRequest(self.ctx, from_payload(event.input)))

    def _advance(self, value: Any, error: BaseException | None) -> None:
        """Resume the generator until it blocks on an incomplete task or finishes."""
        assert self.gen is not None
        while True:
            try:
                yielded = self.gen.throw(error) if error is not None else self.gen.send(value)
            except StopIteration as stop:
                self._complete(stop.value)
                return
            except NonDeterminismError:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt too: the instance fails, not
                self._fail(exc)           # the process running it
                return
            finally:
                self.yields += 1
            if self.ctx._continue_as_new is not None:
                self._complete(None)
                return
            if not isinstance(yielded, Task):
                self._fail(TypeError(
                    f"workflow {self.name!r} yielded {safe_repr(yielded)} ({type(yielded).__name__}); a workflow "
                    "must yield tasks from ctx.call_activity, ctx.create_timer, ctx.wait_for_external_event, "
                    "ctx.call_child_workflow, when_all or when_any"
                ))
                return
            self._attach_event_waits(yielded)
            if not yielded.is_complete:
                self.blocked_on = yielded
                return
            self.received.append(yielded)
            value, error = self._outcome(yielded)

    @staticmethod
    def _outcome(task: Task[Any]) -> tuple[Any, BaseException | None]:
        if task.is_failed:
            return None, task._exception
        return task._result, None

    def _wake_if_unblocked(self) -> None:
        task = self.blocked_on
        if task is not None and task.is_complete and self.completion is None:
            self.blocked_on = None
            self.received.append(task)
            self._detach_losers(task)
            value, error = self._outcome(task)
            self._advance(value, error)

    def _complete(self, result: Any) -> None:
        if self.gen is not None:
            self.gen.close()
        if self.ctx._continue_as_new is not None:
            new_input, _ = self.ctx._continue_as_new
            self.completion = ContinuedAsNew(ts=self.ctx._now_ms, input=new_input)
            return
        try:
            output = to_json_compatible(result, f"output of workflow {self.name!r}")
        except TypeError as exc:
            self._fail(exc)
            return
        self.completion = ExecutionCompleted(ts=self.ctx._now_ms, status=Status.COMPLETED, result=output)

    def _fail(self, exc: BaseException) -> None:
        details = FailureDetails.from_exception(exc)
        self.completion = ExecutionCompleted(ts=self.ctx._now_ms, status=Status.FAILED, failure=details)

    # -- external events: a wait takes an event only once yielded, losers let go ------------------
    def _attach_event_waits(self, task: Task[Any]) -> None:
        for leaf in task.leaves():
            if isinstance(leaf, ExternalEventTask) and not leaf.is_complete and not leaf.waiting:
                buffered = self.ctx._buffered.get(leaf.key)
                if buffered:
                    event = buffered.popleft()
                    index = self._buffered_index.pop(id(event), None)
                    if index is not None:
                        self._event_index[leaf] = index
                    leaf.complete(from_payload(event.data))
                else:
                    leaf.waiting = True
                    self.ctx._waiters.setdefault(leaf.key, []).append(leaf)

    def _detach_losers(self, task: Task[Any]) -> None:
        if not isinstance(task, WhenAnyTask):
            return
        for leaf in task.leaves():
            if isinstance(leaf, ExternalEventTask) and leaf.waiting and not leaf.is_complete:
                leaf.waiting = False
                self.ctx._waiters[leaf.key].remove(leaf)

    # -- applying history -----------------------------------------------------------------------
    def apply(self, event: HistoryEvent) -> None:
        self.position += 1
        handler = _APPLY.get(type(event))
        if handler is not None:
            handler(self, event)
        # Completion, continue-as-new and control events carry no work for the code.
        self._wake_if_unblocked()

    def _on_step_started(self, event: StepStarted) -> None:
        self._check_all_matched(event)
        self.step += 1
        self.received = []  # what the yields receive is recorded per step
        self.ctx._now_ms = event.ts

    def _on_result(self, event: TaskCompleted | ChildCompleted | TaskFailed | ChildFailed) -> None:
        task = self.ctx._open.pop(event.seq, None)
        if task is None:
            return
        self._disarm_timeout(task)
        if isinstance(event, (TaskCompleted, ChildCompleted)):
            self._resolve(task, event.seq, event.result, None)
        else:
            self._resolve(task, event.seq, None, event.failure)

    def _on_timer_fired(self, event: TimerFired) -> None:
        task = self.ctx._open.pop(event.seq, None)
        if task is not None:
            self._timer_fired(task, event.seq)

    def _on_event_raised(self, event: EventRaised) -> None:
        ctx = self.ctx
        waiters = ctx._waiters.get(event_key(event.name))  # names match case-insensitively
        if waiters:
            waiter = waiters.pop(0)
            waiter.waiting = False
            self._event_index[waiter] = self.position - 1
            waiter.complete(from_payload(event.data))
        else:
            self._buffered_index[id(event)] = self.position - 1
            ctx._buffered.setdefault(event_key(event.name), deque()).append(event)

    def _match(self, recorded: HistoryEvent) -> None:
        requested = self.ctx._actions.pop(recorded.seq, None)  # type: ignore[attr-defined]
        if requested is None:
            raise self._nondeterminism(_describe(recorded), "did not ask for it (nothing was scheduled at that point)")
        same_kind = type(requested) is type(recorded)
        same_target = getattr(requested, "name", None) == getattr(recorded, "name", None)
        if isinstance(recorded, TimerCreated) and isinstance(requested, TimerCreated):
            same_target = requested.purpose == recorded.purpose
        if not (same_kind and same_target):
            raise self._nondeterminism(_describe(recorded), f"asked for {_describe(requested)}")

    def _check_patch(self, marker: PatchMarker) -> None:
        """History says is_patched(name) answered True here; the code answered False earlier.
        (A marker the code never asks about, a retired patch, is fine.)"""
        if self.ctx._patches.get(marker.name) is False:
            raise self._nondeterminism(
                _describe(marker),
                f"evaluated ctx.is_patched({marker.name!r}) earlier (where history has no marker) and got False")

    def _check_all_matched(self, at: HistoryEvent) -> None:
        if self.ctx._actions and self.ctx.is_replaying:
            first = next(iter(self.ctx._actions.values()))
            raise self._nondeterminism("no such call at that step", f"asked for {_describe(first)}")

    def _nondeterminism(self, recorded: str, requested: str) -> NonDeterminismError:
        return NonDeterminismError(self.name, self.ctx.instance_id, self.position, recorded, requested,
                                   step=self.step or None)

    def _resolve(self, task: CompletableTask[Any], seq: int, result: Any, failure: FailureDetails | None) -> None:
        owner = self.ctx._retries.pop(seq, None)
        if failure is None:
            result = from_payload(result)
            (owner or task).complete(result)
            if owner is not None:
                task.complete(result)
            return
        message = _chained_message(task, seq, failure)
        if owner is not None and self._retry(owner, failure):
            return
        task.fail(message, failure)
        if owner is not None:
            owner.fail(message, failure)

    def _retry(self, owner: RetryableTask[Any], failure: FailureDetails) -> bool:
        """Schedule the backoff timer before the next attempt; False when the policy gives up."""
        elapsed = timedelta(milliseconds=self.ctx._now_ms - owner.first_scheduled_at)
        seed = zlib.crc32(f"{self.ctx.instance_id}:{owner.request['name']}:{owner.first_scheduled_at}".encode())
        delay = owner.policy.next_delay(owner.attempt, failure.full_type, elapsed, seed)
        if delay is None:
            return False
        if failure.retry_after_ms:  # e.g. an open circuit breaker: no point retrying before then
            delay = max(delay, timedelta(milliseconds=failure.retry_after_ms))
        timer = self.ctx._new_timer(self.ctx._now_ms + int(delay.total_seconds() * 1000), purpose="retry")
        owner.set_current(timer)
        self.ctx._retries[timer.seq] = owner
        return True

    def _abandon(self, seq: int) -> None:
        if not self.ctx.is_replaying:  # recorded steps already let go of theirs
            self.ctx._abandoned.append(seq)

    def _disarm_timeout(self, task: CompletableTask[Any]) -> None:
        """The attempt finished first: its timeout timer no longer matters."""
        guard = getattr(task, "timeout_seq", 0)
        if guard and self.ctx._timeouts.pop(guard, None) is not None:
            self.ctx._open.pop(guard, None)
            self._abandon(guard)

    def _timed_out(self, attempt: ActivityTask[Any]) -> None:
        """The timeout timer fired first: the attempt fails (and may retry); its late result is dropped."""
        if self.ctx._open.pop(attempt.seq, None) is None:
            return
        self._abandon(attempt.seq)
        failure = FailureDetails(
            message=f"activity {attempt.name!r} (attempt {attempt.attempt}) did not finish within "
                    f"{attempt.timeout_ms / 1000:g} s",
            error_type="ActivityTimeoutError",
        )
        self._resolve(attempt, attempt.seq, None, failure)

    def _timer_fired(self, task: CompletableTask[Any], seq: int) -> None:
        guarded = self.ctx._timeouts.pop(seq, None)
        if guarded is not None:
            self._timed_out(guarded)
            return
        owner = self.ctx._retries.pop(seq, None)
        if owner is None:
            task.complete(None)
            return
        owner.attempt += 1
        attempt = self.ctx._schedule_attempt(owner.request, owner.attempt)
        owner.set_current(attempt)
        self.ctx._retries[attempt.seq] = owner

    # -- the step's outcome ---------------------------------------------------------------------
    def wait_spec(self) -> WaitSpec | None:
        if self.completion is not None or self.blocked_on is None:
            return None
        task = self.blocked_on
        pending = [leaf.wake_tokens() for leaf in task.leaves()
                   if not leaf.is_complete and isinstance(leaf, CompletableTask)]
        tokens = tuple(dict.fromkeys(token for group in pending for token in group))
        plain_all = isinstance(task, WhenAllTask) and not any(isinstance(c, CompositeTask) for c in task.children)
        # A leaf raced by a timeout has two tokens of which only one may come: "all" cannot count it.
        raced = any(len(group) > 1 for group in pending)
        return WaitSpec(WAIT_ALL if plain_all and len(tokens) > 1 and not raced else WAIT_ANY, tokens)


    def received_refs(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(awaited, lost): ``task_ref``s of what this step's yields received, and of the
        ``when_any`` losers they let go, each in order and once."""
        got: list[int] = []
        lost: list[int] = []
        for task in self.received:
            self._collect(task, got, lost)
        awaited = tuple(dict.fromkeys(got))
        return awaited, tuple(ref for ref in dict.fromkeys(lost) if ref not in awaited)

    def _collect(self, task: Task[Any], got: list[int], lost: list[int]) -> None:
        if isinstance(task, WhenAnyTask):
            winner = getattr(task, "winner", None) if isinstance(task, TimedEventTask) else \
                task._result if task.is_complete else None
            if isinstance(winner, Task):
                self._collect(winner, got, lost)
            for child in task.children:
                if child is not winner:
                    lost.extend(ref for ref in map(self._ref, child.leaves()) if ref is not None)
        elif isinstance(task, CompositeTask):
            for child in task.children:
                if child.is_complete:
                    self._collect(child, got, lost)
        else:
            ref = self._ref(task)
            if ref is not None:
                got.append(ref)

    def _ref(self, leaf: Task[Any]) -> int | None:
        if isinstance(leaf, RetryableTask):
            leaf = leaf.current  # the attempt (or backoff timer) it is at: the same call
        if isinstance(leaf, (ActivityTask, ChildWorkflowTask, TimerTask)):
            return task_ref(leaf.seq)
        if isinstance(leaf, ExternalEventTask):
            index = self._event_index.get(leaf)
            return None if index is None else task_ref(event_index=index)
        return None


def _chained_message(task: CompletableTask[Any], seq: int, failure: FailureDetails) -> str:
    """Dapr's (durabletask's) text of the ``TaskFailedError`` a failed call raises in the workflow."""
    kind = "Sub-orchestration" if isinstance(task, ChildWorkflowTask) else "Activity"
    return f"{kind} task #{seq} ({getattr(task, 'name', '?')!r}) failed: {failure.message}"


# How ``_Replayer.apply`` handles each kind of recorded event (kinds not listed carry no work for the code).
_APPLY: dict[type[HistoryEvent], Callable[[_Replayer, Any], None]] = {
    StepStarted: _Replayer._on_step_started,
    ExecutionStarted: _Replayer.start,
    TaskScheduled: _Replayer._match,
    ChildScheduled: _Replayer._match,
    TimerCreated: _Replayer._match,
    TaskCompleted: _Replayer._on_result,
    ChildCompleted: _Replayer._on_result,
    TaskFailed: _Replayer._on_result,
    ChildFailed: _Replayer._on_result,
    TimerFired: _Replayer._on_timer_fired,
    EventRaised: _Replayer._on_event_raised,
    PatchMarker: _Replayer._check_patch,
}


class WorkflowExecution:
    """A live, replayed workflow that steps can advance without replaying from the start.

    ``catch_up`` applies recorded history (``is_replaying`` is true while it runs), ``step`` applies
    the events a new step consumes and returns its decisions; after the step's commit succeeded,
    ``committed()`` marks its actions as recorded. A worker may keep an execution between steps and
    feed it only the history entries recorded since; if anything goes wrong it simply drops it
    and replays from the start, which gives the same result.
    """

    def __init__(self, workflow: Callable[..., Any], instance_id: str, generation: int = 0, run: str = "",
                 interceptors: Interceptors | None = None) -> None:
        """``run``: the run id the wake tokens it decides carry (core/vocabulary.py; "" for none);
        ``interceptors``: the runtime and outbound interceptors the code runs under."""
        self._r = _Replayer(workflow, instance_id, generation, run, interceptors)
        self.generation = generation
        self.run = run

    @property
    def finished(self) -> bool:
        return self._r.completion is not None

    @property
    def yields(self) -> int:
        """Times the workflow code gave control back so far (a watchdog's sign of progress)."""
        return self._r.yields

    @property
    def completion(self) -> ExecutionCompleted | ContinuedAsNew | None:
        """How the workflow ended (None while it runs): what an offline replay compares with history."""
        return self._r.completion

    @property
    def history_length(self) -> int:
        """Events applied so far: the instance's history length once the step is committed."""
        return self._r.position

    def catch_up(self, past: Sequence[HistoryEvent]) -> None:
        """Apply recorded history. Raises ``NonDeterminismError`` when the code disagrees with it."""
        r = self._r
        r.ctx.is_replaying = True
        # Markers come after the code that asked (in the same batch), so look ahead for them.
        r.ctx._recorded_patches.update((e.name, e.position) for e in past if isinstance(e, PatchMarker))
        for event in past:
            r.apply(event)
        r._check_all_matched(StepStarted(ts=r.ctx._now_ms))

    def step(self, new: Sequence[HistoryEvent]) -> StepResult:
        """Apply the events this step consumes (led by its ``StepStarted``) and decide."""
        r, ctx = self._r, self._r.ctx
        ctx.is_replaying = False
        ctx._abandoned = []
        r.received = []
        for event in new:
            r.apply(event)
        opened = new[0] if new and isinstance(new[0], StepStarted) else None
        if opened is not None:
            awaited, lost = r.received_refs()
            opened = dataclasses.replace(opened, awaited=awaited, lost=lost or None)
        carry: list[EventRaised] = []
        if isinstance(r.completion, ContinuedAsNew) and ctx._continue_as_new and ctx._continue_as_new[1]:
            carry = [e for queue in ctx._buffered.values() for e in queue]
        return StepResult(
            actions=[*ctx._markers, *ctx._actions.values()],
            completion=r.completion,
            wait=r.wait_spec(),
            custom_status=ctx._custom_status,
            carryover=carry,
            abandoned=list(ctx._abandoned),
            step_started=opened,
            propagation={seq: ctx._propagation[seq] for seq in ctx._actions if seq in ctx._propagation},
            propagated=ctx._propagated,
        )

    def committed(self) -> None:
        """The last step's actions are now history: later catch-ups must not expect them again, and
        the positions of what comes next count them (a history index recorded later is the store's)."""
        ctx = self._r.ctx
        self._r.position += len(ctx._markers) + len(ctx._actions)
        ctx._actions.clear()
        ctx._markers.clear()


def replay(
    workflow: Callable[..., Any],
    instance_id: str,
    past: Sequence[HistoryEvent],
    new: Sequence[HistoryEvent],
    *,
    generation: int = 0,
    run: str = "",
    interceptors: Interceptors | None = None,
) -> StepResult:
    """Run one orchestration step from scratch. Raises ``NonDeterminismError`` when code and
    history disagree."""
    execution = WorkflowExecution(workflow, instance_id, generation, run, interceptors)
    execution.catch_up(past)
    return execution.step(new)


__all__ = ["replay", "WorkflowExecution", "StepResult", "WaitSpec", "TaskFailedError"]
