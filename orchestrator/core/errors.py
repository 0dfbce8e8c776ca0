"""Errors of the engine and the failure record that travels with a failed task or workflow.

Every error the package raises on purpose is an ``OrchestratorError``; the outer layers (store,
worker, client, HTTP, CLI) raise and recognise these same types, and ``orchestrator.errors``
gathers them. Every one can be rebuilt from its constructor arguments (``__reduce__``), as
Celery's result machinery and multiprocessing copy exceptions between processes; the engine's
own wire stays msgpack and JSON::

    OrchestratorError
     +-- TaskFailedError              an awaited activity or child workflow failed (inside a workflow)
     +-- NonDeterminismError          the code asked for something else than history recorded
     +-- ActivityTimeoutError         an attempt outlived call_activity's timeout (recorded by name)
     +-- CircuitOpenError             an attempt refused by its open circuit breaker (recorded by name)
     +-- ActivityWorkerLostError      an attempt lost with its worker process too often (recorded by name)
     +-- ActivityHeartbeatTimeoutError    an attempt sent no heartbeat for heartbeat_timeout (recorded by name)
     +-- ActivityStartToCloseTimeoutError an attempt ran start_to_close_timeout since it started (by name)
     +-- StepWorkerLostError          a step lost with its worker process too often: the instance fails
     +-- WorkflowStepDeadlineError    workflow code ran step_deadline without yielding: the instance fails
     +-- WorkflowNotRegisteredError   no pool registers the workflow (or that version of it)
     +-- ActivityNotRegisteredError   the pool an activity was routed to does not register it
     +-- InstanceNotFoundError        no instance with that id
     +-- InstanceAlreadyExistsError   the id is taken
     +-- InstanceFinishedError        the operation needs a live instance
     +-- InstanceRunningError         the operation needs a finished instance
     +-- IdempotencyKeyReusedError    an idempotency key sent again with an event of another name
     +-- ScheduleNotFoundError        no schedule with that id
     +-- ScheduleExistsError          a schedule with that id exists already
     +-- PayloadError (TypeError)     a value that breaks a payload rule (core.payload): not JSON, an int
     |    |                           beyond 64 bits, a lone surrogate, nested too deep
     |    +-- PayloadTooLargeError    over max_payload_bytes
     +-- HistoryFormatError (ValueError)   core.history: a stored record does not decode
     +-- RerunError (ValueError)      core.rerun: a rerun cannot be built from that history
     +-- NonRetryableError            core.retry: raised by an activity, fails it without retrying
     +-- ExposureError (ValueError)   http.server: the API would be open to other machines
     +-- MetricsUnavailable (RuntimeError)   http.prometheus: prometheus_client is not installed

Documented exceptions, deliberately outside the tree:

* ``RedisUnavailableError`` and its ``RedisAuthError`` (store.connection) subclass redis-py's
  ``ConnectionError``: the store being unreachable is not the engine refusing something, and every
  retry path (Celery's autoretry, the pools' duties) handles it as redis-py's error; callers catch
  ``StoreError`` / ``StoreUnavailable`` (store.connection, re-exported by ``orchestrator.errors``).
* ``TimeoutError`` (builtin) from the client's ``wait_for_workflow_*``, as in Dapr's client.
* The edges' internal control flow: ``http.app.ApiError`` / ``BodyTooLarge`` (become HTTP
  responses) and ``cli.common.Failed`` (click's exception: an exit code and a message).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, replace
from typing import Any

from .text import clip_head, clip_tail, safe_str, storable


@dataclass(frozen=True)
class FailureDetails:
    """Why a task or a workflow failed: the error's type name, its message and its stack trace.

    ``error_type`` is the bare class name, as Dapr records it (``ValueError``, ``PaymentDeclined``);
    ``qualified_type`` keeps the module-qualified name (``billing.errors.PaymentDeclined``) when it
    differs, so two classes of one name stay apart. A workflow that fails because an awaited
    activity or child failed carries Dapr's chained message (``Activity task #3 ('charge') failed: ...``)
    and the root cause's type names."""

    message: str
    error_type: str
    stack_trace: str | None = None
    # Set by the engine on a failure that says when a retry can succeed (an open circuit breaker):
    # replay waits at least this long before the next attempt, whatever the retry policy says.
    retry_after_ms: int | None = None
    qualified_type: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> FailureDetails:
        kind = type(exc)
        if isinstance(exc, TaskFailedError):
            # Re-raised task failures keep the original error's type, so the workflow's failure says
            # what actually went wrong; the message is the chained one (Dapr's TaskFailedError text).
            return replace(exc.details, message=clip_head(safe_str(exc)) or exc.details.message)
        qualified = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        try:
            stack = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
        except Exception as failed:  # noqa: BLE001 - a broken exception still fails its task clearly
            stack = f"(the stack trace could not be formatted: {type(failed).__name__})"
        # User exceptions may not print (their __str__ raises), may hold text UTF-8 cannot store, or
        # may be megabytes long: the failure is recorded all the same, readable and bounded.
        bare = storable(kind.__name__)
        return cls(message=clip_head(safe_str(exc)), error_type=bare, stack_trace=clip_tail(storable(stack)),
                   qualified_type=None if qualified == bare else storable(qualified))

    @property
    def full_type(self) -> str:
        """The module-qualified type name when known, else ``error_type``."""
        return self.qualified_type or self.error_type

    def to_list(self) -> list[Any]:
        head: list[Any] = [self.error_type, self.message, self.stack_trace]
        if self.qualified_type is not None:
            return head + [self.retry_after_ms, self.qualified_type]
        return head if self.retry_after_ms is None else head + [self.retry_after_ms]

    @classmethod
    def from_list(cls, value: list[Any]) -> FailureDetails:
        error_type, message, stack, retry_after, qualified = (list(value) + [None] * 5)[:5]
        return cls(message=str(message), error_type=str(error_type), stack_trace=stack,
                   retry_after_ms=None if retry_after is None else int(retry_after),
                   qualified_type=None if qualified is None else str(qualified))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_type": self.error_type, "message": self.message, "stack_trace": self.stack_trace}
        if self.retry_after_ms is not None:
            out["retry_after_ms"] = self.retry_after_ms
        if self.qualified_type is not None:
            out["qualified_type"] = self.qualified_type
        return out

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> FailureDetails:
        """The inverse of ``to_dict`` (exported histories)."""
        if not isinstance(value, dict) or "error_type" not in value or "message" not in value:
            raise ValueError(f"a failure must be an object with error_type and message, got {value!r}")
        retry_after = value.get("retry_after_ms")
        qualified = value.get("qualified_type")
        return cls(message=str(value["message"]), error_type=str(value["error_type"]),
                   stack_trace=value.get("stack_trace"),
                   retry_after_ms=None if retry_after is None else int(retry_after),
                   qualified_type=None if qualified is None else str(qualified))


class OrchestratorError(Exception):
    """Base of the errors this package raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other constructor arguments than ``args`` holds (TaskFailedError's details,
        # NonDeterminismError's fields): rebuild from args and attributes instead of calling __init__.
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def _rebuild(cls: type[OrchestratorError], args: tuple[Any, ...], state: dict[str, Any]) -> OrchestratorError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class TaskFailedError(OrchestratorError):
    """Raised inside a workflow when an activity or child workflow it awaited failed."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details

    @property
    def error_type(self) -> str:
        return self.details.error_type


class NonDeterminismError(OrchestratorError):
    """The workflow code asked for something other than what its history recorded at that point.

    Raised by replay; the instance is failed with this error and its history is left untouched.
    """

    def __init__(self, workflow: str, instance_id: str, position: int, recorded: str, requested: str,
                 step: int | None = None) -> None:
        self.workflow = workflow
        self.instance_id = instance_id
        self.position = position  # 1-based index of the history event where code and history parted
        self.step = step  # 1-based orchestration step (StepStarted batch) holding that event
        self.recorded = recorded
        self.requested = requested
        where = f"step {step} (history event #{position})" if step else f"history event #{position}"
        super().__init__(
            f"workflow {workflow!r} (instance {instance_id!r}) is not deterministic at {where}: "
            f"history recorded {recorded}, but the code {requested}. The workflow's code changed under "
            "a running instance. Guard the change with `if ctx.is_patched(\"<change-name>\"):` (new code) "
            "`else:` (old code), or register the new code as a new version (@wfr.workflow(name=..., "
            "version=...)), or let old instances finish first; check a deploy with "
            "orchestrator.testing.Replayer on exported histories (README: Versioning workflows)."
        )


class ActivityTimeoutError(OrchestratorError):
    """An activity attempt did not finish within the ``timeout`` given to ``call_activity``.

    Recorded (as the bare type name) by replay when the attempt's timeout timer fires first."""


class CircuitOpenError(OrchestratorError):
    """An activity attempt was refused because its circuit breaker is open (see worker/circuit.py).

    Recorded (as the bare type name) with ``retry_after_ms`` = the rest of the cool-down."""


class ActivityWorkerLostError(OrchestratorError):
    """An activity attempt whose worker process died (or stopped heartbeating) while running it, more
    than ``lost_attempt_retries`` times: counted as a failed attempt (worker/liveness.py)."""


class ActivityHeartbeatTimeoutError(OrchestratorError):
    """An activity attempt with ``heartbeat_timeout`` went that long without ``ctx.heartbeat()``
    (worker/heartbeats.py); recorded by name, retried per the call's policy."""


class ActivityStartToCloseTimeoutError(OrchestratorError):
    """An activity attempt ran ``start_to_close_timeout`` since it started (worker/heartbeats.py)."""


class StepWorkerLostError(OrchestratorError):
    """A workflow step whose worker process died while running it, more than ``lost_attempt_retries``
    times in a row: the instance fails, so that its code takes no more processes down."""


class WorkflowStepDeadlineError(OrchestratorError):
    """Workflow code ran ``step_deadline`` seconds without yielding (a loop that never yields, or
    blocking work in workflow code): the step is stopped and the instance fails (worker/deadline.py)."""


class WorkflowNotRegisteredError(OrchestratorError):
    """A workflow name that no worker pool registers."""


class ActivityNotRegisteredError(OrchestratorError):
    """An activity name that the worker pool it was routed to does not register."""


class InstanceNotFoundError(OrchestratorError):
    """An operation named an instance id that does not exist."""


class InstanceAlreadyExistsError(OrchestratorError):
    """schedule_new_workflow was given an id that is taken."""


class InstanceFinishedError(OrchestratorError):
    """An operation that needs a live instance was given a finished one."""


class InstanceRunningError(OrchestratorError):
    """An operation that needs a finished instance (purge) was given a live one."""


class IdempotencyKeyReusedError(OrchestratorError):
    """raise_workflow_event got an idempotency key the instance received with an event of another
    name: nothing is stored (a retry of the same raise, same key and name, succeeds and does nothing)."""


class ScheduleNotFoundError(OrchestratorError):
    """No schedule with that id (core/schedule.py)."""


class ScheduleExistsError(OrchestratorError):
    """create_schedule got the id of an existing schedule (pass replace=True to replace its spec)."""


class PayloadError(OrchestratorError, TypeError):
    """A workflow or activity input/output that breaks a payload rule (see ``core.payload``)."""


class PayloadTooLargeError(PayloadError):
    """A payload over ``max_payload_bytes`` (the HTTP API answers 413 for it, 400 for other payload errors)."""
