"""History events: the small typed records a workflow's history is made of.

Every event is a frozen dataclass with an explicit numeric ``KIND``. Its record (``to_record``) is
the array ``[KIND, ts, *fields]`` (field order = dataclass order); ``orchestrator.codec`` packs
records with msgpack, which keeps a history step of a chain workflow to a few dozen bytes. A kind may
end in ``OPTIONAL_TAIL`` optional fields that are left off the record (and out of the JSON form)
while they are None, so adding one to a kind keeps every record written before it byte-for-byte the
same, and those records still decode. Times are integer milliseconds since the Unix epoch (UTC), so
nothing here depends on time zones or float rounding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import FailureDetails, OrchestratorError


@dataclass(frozen=True, kw_only=True)
class HistoryEvent:
    """Base of every history record; ``ts`` is when the event happened (ms since epoch)."""

    KIND: ClassVar[int] = 0
    OPTIONAL_TAIL: ClassVar[int] = 0  # trailing fields omitted from the record while None
    ts: int = 0

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, kw_only=True)
class StepStarted(HistoryEvent):
    """Opens the batch of one orchestration step; its ``ts`` is the workflow's deterministic 'now'.

    ``awaited`` records what the code's ``yield``s received during this step, in order, and ``lost``
    the ``when_any`` losers they let go (see ``task_ref``): the execution picture is drawn from them
    instead of guessed from timing. Both are None in steps that ran no workflow code and in
    histories written before they existed; an empty ``awaited`` is a step whose yields received
    nothing (the first step, a retry's backoff)."""

    KIND: ClassVar[int] = 1
    OPTIONAL_TAIL: ClassVar[int] = 2
    awaited: tuple[int, ...] | None = None
    lost: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        # Decoded records carry lists; keep tuples so events stay hashable and compare equal.
        for name in ("awaited", "lost"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))


def task_ref(seq: int | None = None, *, event_index: int | None = None) -> int:
    """How ``StepStarted.awaited`` / ``lost`` name what a yield waited on: a call, timer or child by
    its sequence number (>= 1), an external event by the history index of its ``EventRaised`` as
    ``-(index + 1)`` (events take no sequence number)."""
    if event_index is not None:
        return -(event_index + 1)
    if seq is None or seq < 1:
        raise ValueError(f"a task reference needs a sequence number >= 1 or an event index, got {seq!r}")
    return seq


def ref_event_index(ref: int) -> int | None:
    """The history index a negative ``task_ref`` names (None for a sequence number)."""
    return -ref - 1 if ref < 0 else None


@dataclass(frozen=True, kw_only=True)
class ExecutionStarted(HistoryEvent):
    """``version`` is the registered workflow version the instance runs (None: unversioned)."""

    KIND: ClassVar[int] = 2
    OPTIONAL_TAIL: ClassVar[int] = 1
    name: str
    input: Any = None
    version: str | None = None
    propagated: Any = None  # the history its caller propagated to it (core/propagation.py), if any


@dataclass(frozen=True, kw_only=True)
class TaskScheduled(HistoryEvent):
    """The workflow asked for activity ``name``; ``seq`` identifies the call within the instance.
    ``heartbeat_ms`` / ``start_to_close_ms``: the attempt's heartbeat and start-to-close timeouts
    (``call_activity(heartbeat_timeout=, start_to_close_timeout=)``), None when not set."""

    KIND: ClassVar[int] = 3
    OPTIONAL_TAIL: ClassVar[int] = 2
    seq: int
    name: str
    input: Any = None
    app_id: str | None = None
    attempt: int = 1
    heartbeat_ms: int | None = None
    start_to_close_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(HistoryEvent):
    """An attempt's result; ``run_ms`` is how long the activity function ran (the rest of the time
    since it was scheduled it waited in the queue), None where unknown."""

    KIND: ClassVar[int] = 4
    OPTIONAL_TAIL: ClassVar[int] = 1
    seq: int
    result: Any = None
    run_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class TaskFailed(HistoryEvent):
    """An attempt's failure; ``run_ms`` as for ``TaskCompleted``."""

    KIND: ClassVar[int] = 5
    OPTIONAL_TAIL: ClassVar[int] = 1
    seq: int
    failure: FailureDetails
    run_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class TimerCreated(HistoryEvent):
    """A durable timer; ``purpose`` is "" for user timers, "retry" for a retry backoff."""

    KIND: ClassVar[int] = 6
    seq: int
    fire_at: int
    purpose: str = ""


@dataclass(frozen=True, kw_only=True)
class TimerFired(HistoryEvent):
    KIND: ClassVar[int] = 7
    seq: int


@dataclass(frozen=True, kw_only=True)
class EventRaised(HistoryEvent):
    """An external event delivered to the instance (matched to waits by name, in arrival order)."""

    KIND: ClassVar[int] = 8
    name: str
    data: Any = None


@dataclass(frozen=True, kw_only=True)
class ChildScheduled(HistoryEvent):
    KIND: ClassVar[int] = 9
    seq: int
    name: str
    instance_id: str
    input: Any = None
    app_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ChildCompleted(HistoryEvent):
    KIND: ClassVar[int] = 10
    seq: int
    result: Any = None


@dataclass(frozen=True, kw_only=True)
class ChildFailed(HistoryEvent):
    KIND: ClassVar[int] = 11
    seq: int
    failure: FailureDetails


@dataclass(frozen=True, kw_only=True)
class ExecutionCompleted(HistoryEvent):
    """The workflow function returned (status COMPLETED) or raised (status FAILED)."""

    KIND: ClassVar[int] = 12
    status: str
    result: Any = None
    failure: FailureDetails | None = None


@dataclass(frozen=True, kw_only=True)
class ContinuedAsNew(HistoryEvent):
    KIND: ClassVar[int] = 13
    input: Any = None


@dataclass(frozen=True, kw_only=True)
class ExecutionTerminated(HistoryEvent):
    KIND: ClassVar[int] = 14
    output: Any = None
    recursive: bool = True


@dataclass(frozen=True, kw_only=True)
class ExecutionSuspended(HistoryEvent):
    KIND: ClassVar[int] = 15
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExecutionResumed(HistoryEvent):
    KIND: ClassVar[int] = 16
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class PatchMarker(HistoryEvent):
    """``ctx.is_patched(name)`` first returned True here: ``position`` is the number of calls (seqs)
    the workflow had made at that moment. It takes no sequence number, so recording one never shifts
    the seqs of later calls, and histories recorded before the patch replay unchanged."""

    KIND: ClassVar[int] = 17
    name: str
    position: int = 0


EVENT_TYPES: dict[int, type[HistoryEvent]] = {
    cls.KIND: cls
    for cls in (
        StepStarted, ExecutionStarted, TaskScheduled, TaskCompleted, TaskFailed, TimerCreated,
        TimerFired, EventRaised, ChildScheduled, ChildCompleted, ChildFailed, ExecutionCompleted,
        ContinuedAsNew, ExecutionTerminated, ExecutionSuspended, ExecutionResumed, PatchMarker,
    )
}
_FIELDS: dict[type[HistoryEvent], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in EVENT_TYPES.values()
}
# Control events are handled by the step itself, before and regardless of the workflow code.
CONTROL_EVENTS = (ExecutionTerminated, ExecutionSuspended, ExecutionResumed)


class HistoryFormatError(OrchestratorError, ValueError):
    """A stored record could not be decoded into a history event."""


def _encode_value(value: Any) -> Any:
    if isinstance(value, FailureDetails):
        return value.to_list()
    return value


def _present_fields(event: HistoryEvent) -> tuple[str, ...]:
    """The event's fields less its optional tail's trailing None values."""
    names = _FIELDS[type(event)]
    end, stop = len(names), len(names) - type(event).OPTIONAL_TAIL
    while end > stop and getattr(event, names[end - 1]) is None:
        end -= 1
    return names[:end]


def to_record(event: HistoryEvent) -> list[Any]:
    """The msgpack-ready array form of ``event``."""
    cls = type(event)
    return [cls.KIND] + [_encode_value(getattr(event, name)) for name in _present_fields(event)]


def from_record(record: list[Any]) -> HistoryEvent:
    try:
        cls = EVENT_TYPES[record[0]]
        values = dict(zip(_FIELDS[cls], record[1:]))
        for key in ("failure",):
            if values.get(key) is not None:
                values[key] = FailureDetails.from_list(values[key])
        return cls(**values)
    except (KeyError, IndexError, TypeError) as exc:
        raise HistoryFormatError(f"malformed history record {record!r}: {exc}") from exc


def event_to_dict(event: HistoryEvent) -> dict[str, Any]:
    """A JSON-friendly view of an event, for the client, CLI, HTTP API and dashboard."""
    out: dict[str, Any] = {"kind": event.kind}
    for name in _present_fields(event):
        value = getattr(event, name)
        out[name] = value.to_dict() if isinstance(value, FailureDetails) else list(value) if isinstance(
            value, tuple) else value
    return out


_BY_KIND_NAME: dict[str, type[HistoryEvent]] = {cls.__name__: cls for cls in EVENT_TYPES.values()}


def event_from_dict(data: Any) -> HistoryEvent:
    """The inverse of ``event_to_dict``: read an event back from its JSON form (exported histories)."""
    if not isinstance(data, dict):
        raise HistoryFormatError(f"a history event must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    cls = _BY_KIND_NAME.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise HistoryFormatError(f"unknown history event kind {kind!r}; expected one of {sorted(_BY_KIND_NAME)}")
    fields = _FIELDS[cls]
    unknown = sorted(set(data) - set(fields) - {"kind"})
    if unknown:
        raise HistoryFormatError(f"{kind} event has unknown field(s) {unknown}; its fields are {list(fields)}")
    values = {name: data[name] for name in fields if name in data}
    try:
        if values.get("failure") is not None:
            values["failure"] = FailureDetails.from_dict(values["failure"])
        return cls(**values)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise HistoryFormatError(f"malformed {kind} event {data!r}: {exc}") from exc
