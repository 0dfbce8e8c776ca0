"""Dapr's workflow interceptors: requests, interceptor protocols and base classes, chain composition.

Three kinds, as in the Dapr SDK (``dapr.ext.workflow.interceptors``):

- client interceptors wrap ``DaprWorkflowClient.schedule_new_workflow`` (``ScheduleWorkflowRequest``);
- workflow outbound interceptors wrap ``ctx.call_activity`` / ``ctx.call_child_workflow`` inside a
  workflow (``CallActivityRequest`` / ``CallChildWorkflowRequest``): they may change the name, the
  input and the retry policy of the call before it is recorded; and ``ctx.continue_as_new``
  (``ContinueAsNewRequest``: the new input);
- runtime interceptors wrap each execution of a workflow function (``ExecuteWorkflowRequest``) and of
  an activity (``ExecuteActivityRequest``).

Each interceptor method takes ``(request, next)`` and returns what ``next(request)`` returns (or
something in its place); a chain runs interceptors in list order, the first is outermost.

Replay: a workflow function is called again each time its code is replayed from the start, so
``execute_workflow`` runs then too (as in Dapr; a worker that keeps the live execution in its replay
cache between steps calls neither again); code there that must happen once checks
``request.ctx.is_replaying`` or is idempotent. Outbound interceptors likewise run again for each
recorded call on replay, and must decide the same way each time (history checks what they decide).

``metadata``: Dapr carries a string map through an envelope around the payload. Here it is not
carried: inbound requests have ``metadata=None``, and a request that leaves a chain with metadata
raises ``ValueError`` rather than dropping it silently (docs/dapr-compat.md: Interceptors).

Pure: this module imports nothing from storage, transport or the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

TInput = TypeVar("TInput")
TWorkflowInput = TypeVar("TWorkflowInput")
TActivityInput = TypeVar("TActivityInput")

Next = Callable[[Any], Any]


# -- requests -----------------------------------------------------------------------------------
@dataclass
class ScheduleWorkflowRequest(Generic[TInput]):
    workflow_name: str
    input: TInput
    instance_id: str | None
    start_at: Any | None
    reuse_id_policy: Any | None
    metadata: dict[str, str] | None = None


@dataclass
class CallActivityRequest(Generic[TInput]):
    activity_name: str
    input: TInput
    retry_policy: Any | None
    workflow_ctx: Any | None = None
    metadata: dict[str, str] | None = None


@dataclass
class CallChildWorkflowRequest(Generic[TInput]):
    workflow_name: str
    input: TInput
    instance_id: str | None
    workflow_ctx: Any | None = None
    metadata: dict[str, str] | None = None
    retry_policy: Any | None = None  # ours: Dapr's request has none, ours lets an interceptor set it


@dataclass
class ContinueAsNewRequest(Generic[TInput]):
    input: TInput
    workflow_ctx: Any | None = None
    metadata: dict[str, str] | None = None


@dataclass
class ExecuteWorkflowRequest(Generic[TInput]):
    ctx: Any  # the DaprWorkflowContext of this execution
    input: TInput
    metadata: dict[str, str] | None = None


@dataclass
class ExecuteActivityRequest(Generic[TInput]):
    ctx: Any  # the WorkflowActivityContext of this attempt
    input: TInput
    metadata: dict[str, str] | None = None


@dataclass
class WorkflowExecutionInfo:
    """What a runtime interceptor may want to know of a workflow execution (Dapr's fields)."""

    workflow_id: str
    workflow_name: str
    is_replaying: bool
    history_event_sequence: int | None = None
    inbound_metadata: dict[str, str] = field(default_factory=dict)
    parent_instance_id: str | None = None


@dataclass
class ActivityExecutionInfo:
    """What a runtime interceptor may want to know of an activity attempt (Dapr's fields)."""

    workflow_id: str
    activity_name: str
    task_id: int
    attempt: int | None = None
    inbound_metadata: dict[str, str] = field(default_factory=dict)


# -- protocols and base classes ------------------------------------------------------------------
class ClientInterceptor(Protocol[TInput]):
    def schedule_new_workflow(self, input: ScheduleWorkflowRequest[TInput], next: Next) -> Any: ...


class WorkflowOutboundInterceptor(Protocol[TWorkflowInput, TActivityInput]):
    def call_activity(self, input: CallActivityRequest[TActivityInput], next: Next) -> Any: ...

    def call_child_workflow(self, input: CallChildWorkflowRequest[TWorkflowInput], next: Next) -> Any: ...

    def continue_as_new(self, input: ContinueAsNewRequest[TWorkflowInput], next: Next) -> Any: ...


class RuntimeInterceptor(Protocol[TWorkflowInput, TActivityInput]):
    def execute_workflow(self, input: ExecuteWorkflowRequest[TWorkflowInput], next: Next) -> Any: ...

    def execute_activity(self, input: ExecuteActivityRequest[TActivityInput], next: Next) -> Any: ...


class BaseClientInterceptor(Generic[TInput]):
    """Subclass and override what you need; the rest passes the request on unchanged."""

    def schedule_new_workflow(self, input: ScheduleWorkflowRequest[TInput], next: Next) -> Any:
        return next(input)


class BaseWorkflowOutboundInterceptor(Generic[TWorkflowInput, TActivityInput]):
    """Subclass and override what you need; the rest passes the request on unchanged."""

    def call_activity(self, input: CallActivityRequest[TActivityInput], next: Next) -> Any:
        return next(input)

    def call_child_workflow(self, input: CallChildWorkflowRequest[TWorkflowInput], next: Next) -> Any:
        return next(input)

    def continue_as_new(self, input: ContinueAsNewRequest[TWorkflowInput], next: Next) -> Any:
        return next(input)


class BaseRuntimeInterceptor(Generic[TWorkflowInput, TActivityInput]):
    """Subclass and override what you need; the rest passes the request on unchanged."""

    def execute_workflow(self, input: ExecuteWorkflowRequest[TWorkflowInput], next: Next) -> Any:
        return next(input)

    def execute_activity(self, input: ExecuteActivityRequest[TActivityInput], next: Next) -> Any:
        return next(input)


# -- composition ---------------------------------------------------------------------------------
_METHODS: dict[type, str] = {
    ScheduleWorkflowRequest: "schedule_new_workflow",
    CallActivityRequest: "call_activity",
    CallChildWorkflowRequest: "call_child_workflow",
    ContinueAsNewRequest: "continue_as_new",
    ExecuteWorkflowRequest: "execute_workflow",
    ExecuteActivityRequest: "execute_activity",
}


def _compose(interceptors: Sequence[Any] | None, terminal: Next) -> Next:
    """One callable: the first interceptor outermost, ``terminal`` innermost. Each request goes to
    the interceptor method its type names; an interceptor without that method passes it on."""
    chain = terminal
    for interceptor in reversed(list(interceptors or ())):
        chain = _link(interceptor, chain)
    return chain


def _link(interceptor: Any, inner: Next) -> Next:
    def run(request: Any) -> Any:
        method = getattr(interceptor, _METHODS.get(type(request), ""), None)
        return method(request, inner) if callable(method) else inner(request)
    return run


def compose_client_chain(interceptors: Sequence[Any] | None, terminal: Next) -> Next:
    return _compose(interceptors, terminal)


def compose_workflow_outbound_chain(interceptors: Sequence[Any] | None, terminal: Next) -> Next:
    return _compose(interceptors, terminal)


def compose_runtime_chain(interceptors: Sequence[Any] | None, final_handler: Next) -> Next:
    return _compose(interceptors, final_handler)


def no_metadata(request: Any, where: str) -> None:
    """Metadata is not carried here (module docstring): refuse it rather than drop it."""
    if getattr(request, "metadata", None):
        raise ValueError(f"{where}: interceptor metadata is not carried by this engine (docs/dapr-compat.md: "
                         "Interceptors); put what the callee needs into its input")


GRPC_HOOKS = ("intercept_unary_unary", "intercept_unary_stream", "intercept_stream_unary", "intercept_stream_stream")
_ROLES = {"client": ("schedule_new_workflow",), "runtime": ("execute_workflow", "execute_activity"),
          "outbound": ("call_activity", "call_child_workflow")}
_ROLES["any"] = _ROLES["runtime"] + _ROLES["outbound"]  # a runtime's interceptors=: either kind


def check_interceptors(interceptors: Any, role: str, where: str) -> list[Any]:
    """The list ``interceptors`` as given to ``where``, each checked to be a ``role`` interceptor
    (a gRPC channel interceptor, which Dapr's ``interceptors=`` also takes, has no channel here)."""
    if interceptors is None:
        return []
    if isinstance(interceptors, (str, bytes)) or not hasattr(interceptors, "__iter__"):
        raise TypeError(f"{where} must be a list of interceptors, got {type(interceptors).__name__}")
    items = list(interceptors)
    for item in items:
        if any(hasattr(item, hook) for hook in GRPC_HOOKS):
            raise TypeError(f"{where}: {type(item).__name__} is a gRPC interceptor; there is no gRPC channel "
                            "here (docs/dapr-compat.md: Interceptors)")
        if not any(callable(getattr(item, m, None)) for m in _ROLES[role]):
            raise TypeError(f"{where}: {type(item).__name__} has none of {', '.join(_ROLES[role])}")
    return items


@dataclass
class Interceptors:
    """The interceptors a runtime's workflows and activities run under."""

    runtime: list[Any] = field(default_factory=list)
    outbound: list[Any] = field(default_factory=list)


__all__ = [
    "ActivityExecutionInfo", "BaseClientInterceptor", "BaseRuntimeInterceptor", "BaseWorkflowOutboundInterceptor",
    "CallActivityRequest", "CallChildWorkflowRequest", "ClientInterceptor", "ContinueAsNewRequest",
    "ExecuteActivityRequest", "ExecuteWorkflowRequest", "Interceptors", "RuntimeInterceptor", "ScheduleWorkflowRequest",
    "WorkflowExecutionInfo", "WorkflowOutboundInterceptor", "compose_client_chain", "compose_runtime_chain",
    "compose_workflow_outbound_chain",
]
