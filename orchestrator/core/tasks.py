"""Tasks: what a workflow yields. A task completes once, with a result or a failure.

Leaf tasks (activity, timer, external event, child workflow) are completed by history events during
replay; ``when_all`` / ``when_any`` compose them. Each incomplete leaf has a *wake token* (``t:<task
key>``, given by the context that made the call, or ``e:<event name>``): the set of tokens a blocked
workflow waits on is what the store uses to wake the instance only when the wait can be satisfied
(chord-like fan-in).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar, cast

from .errors import FailureDetails, TaskFailedError
from .vocabulary import event_key, event_token

T = TypeVar("T")


class Task(Generic[T]):
    """Something a workflow can yield; Dapr-compatible ``get_result`` / ``is_complete`` / ``is_failed``."""

    def __init__(self) -> None:
        self._complete = False
        self._result: Any = None
        self._exception: TaskFailedError | None = None
        self._parents: list[CompositeTask[Any]] = []

    @property
    def is_complete(self) -> bool:
        return self._complete

    @property
    def is_failed(self) -> bool:
        return self._exception is not None

    def get_result(self) -> T:
        if not self._complete:
            raise ValueError("the task has not completed yet")
        if self._exception is not None:
            raise self._exception
        return cast(T, self._result)

    def get_exception(self) -> TaskFailedError:
        if self._exception is None:
            raise ValueError("the task did not fail")
        return self._exception

    def leaves(self) -> Iterable[Task[Any]]:
        yield self

    def _finish(self) -> None:
        self._complete = True
        for parent in self._parents:
            parent._on_child_done(self)


class CompletableTask(Task[T]):
    """A leaf task completed by a history event."""

    token: str = ""

    def wake_tokens(self) -> tuple[str, ...]:
        """Every token whose delivery can complete this task (an activity's timeout adds one)."""
        return (self.token,)

    def complete(self, result: T) -> None:
        if self._complete:
            return
        self._result = result
        self._finish()

    def fail(self, message: str, details: FailureDetails) -> None:
        if self._complete:
            return
        self._exception = TaskFailedError(message, details)
        self._finish()


class ActivityTask(CompletableTask[T]):
    def __init__(self, seq: int, name: str, token: str) -> None:
        super().__init__()
        self.seq, self.name, self.token = seq, name, token
        self.timeout_seq = 0  # seq of the timer racing this attempt (call_activity's timeout), 0 if none
        self.timeout_token = ""  # that timer's wake token
        self.timeout_ms = 0
        self.attempt = 1

    def wake_tokens(self) -> tuple[str, ...]:
        return (self.token, self.timeout_token) if self.timeout_seq else (self.token,)


class ChildWorkflowTask(CompletableTask[T]):
    def __init__(self, seq: int, name: str, instance_id: str, token: str) -> None:
        super().__init__()
        self.seq, self.name, self.instance_id, self.token = seq, name, instance_id, token


class TimerTask(CompletableTask[None]):
    def __init__(self, seq: int, fire_at: int, token: str) -> None:
        super().__init__()
        self.seq, self.fire_at, self.token = seq, fire_at, token


class ExternalEventTask(CompletableTask[T]):
    """Waits for the next event of ``name``; it takes an event only once yielded (see replay).

    Names match case-insensitively (``key`` is the casefolded name), as in Dapr's SDK."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.key = name, event_key(name)
        self.token = event_token(name)
        self.waiting = False


class RetryableTask(CompletableTask[T]):
    """An activity or child call with a retry policy: the attempts and backoff timers behind one task.

    The current attempt (or the backoff timer between attempts) is ``current``; replay swaps it as
    attempts fail and timers fire, so the whole retry loop is deterministic and durable.
    """

    def __init__(
        self, inner: CompletableTask[T], policy: Any, first_scheduled_at: int, request: dict[str, Any]
    ) -> None:
        super().__init__()
        self.policy = policy
        self.current: CompletableTask[Any] = inner
        self.attempt = 1
        self.first_scheduled_at = first_scheduled_at
        self.request = request  # what to schedule again: kind, name, input, app_id, instance_id
        self.token = inner.token

    def set_current(self, task: CompletableTask[Any]) -> None:
        self.current = task
        self.token = task.token

    def wake_tokens(self) -> tuple[str, ...]:
        return self.current.wake_tokens()


class CompositeTask(Task[T]):
    def __init__(self, children: list[Task[Any]]) -> None:
        super().__init__()
        for child in children:
            if not isinstance(child, Task):
                raise TypeError(f"when_all/when_any take tasks, got {type(child).__name__}")
        self.children = list(children)
        for child in self.children:
            child._parents.append(self)

    def leaves(self) -> Iterable[Task[Any]]:
        for child in self.children:
            yield from child.leaves()

    def _start(self) -> None:
        for child in self.children:
            if child.is_complete:
                self._on_child_done(child)
                if self._complete:
                    return

    def _on_child_done(self, child: Task[Any]) -> None:
        raise NotImplementedError


class WhenAllTask(CompositeTask[list[Any]]):
    """Completes with every child's result, in order; fails as soon as one child fails."""

    def __init__(self, children: list[Task[Any]]) -> None:
        super().__init__(children)
        self._done = 0
        if not self.children:
            self._result = []
            self._complete = True
        else:
            self._start()

    def _on_child_done(self, child: Task[Any]) -> None:
        if self._complete:
            return
        if child.is_failed:
            self._exception = child._exception
            self._finish()
            return
        self._done += 1
        if self._done == len(self.children):
            self._result = [c._result for c in self.children]
            self._finish()


class WhenAnyTask(CompositeTask[Task[Any]]):
    """Completes with the first child to finish (the winning task itself, as in Dapr)."""

    def __init__(self, children: list[Task[Any]]) -> None:
        if not children:
            raise ValueError("when_any needs at least one task")
        super().__init__(children)
        self._start()

    def _on_child_done(self, child: Task[Any]) -> None:
        if self._complete:
            return
        self._result = child
        self._finish()


class TimedEventTask(WhenAnyTask):
    """``wait_for_external_event(name, timeout=...)``: the event, or a failure once the timer fires first."""

    def __init__(self, event: ExternalEventTask[Any], timer: TimerTask, seconds: float) -> None:
        self.event, self.timer, self.seconds = event, timer, seconds
        self.winner: Task[Any] | None = None
        super().__init__([event, timer])

    def _on_child_done(self, child: Task[Any]) -> None:
        if self._complete:
            return
        self.winner = child
        if child is self.event:
            self._result, self._exception = child._result, child._exception
        else:
            details = FailureDetails(f"no event {self.event.name!r} within {self.seconds:g} s", "TimeoutError")
            self._exception = TaskFailedError(f"timed out waiting for external event {self.event.name!r} "
                                              f"after {self.seconds:g} s", details)
        self._finish()


def when_all(tasks: list[Task[Any]]) -> WhenAllTask:
    """A task that completes when all ``tasks`` complete, with the list of their results."""
    return WhenAllTask(list(tasks))


def when_any(tasks: list[Task[Any]]) -> WhenAnyTask:
    """A task that completes when the first of ``tasks`` completes, with that task."""
    return WhenAnyTask(list(tasks))
