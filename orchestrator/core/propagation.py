"""History propagation (the Dapr SDK's main branch): a workflow hands its recorded history to an
activity or child workflow it calls, which reads it with ``ctx.get_propagated_history()``.

``PropagationScope.OWN_HISTORY`` hands the caller's own history; ``LINEAGE`` also the histories the
caller itself received (its ancestors'), oldest first. The history travels as a payload of chunks,
one per workflow instance: ``{"app_id", "instance_id", "workflow_name", "events": [event dicts]}``
(``history.event_to_dict``), fixed when the call is scheduled, so a replay reads the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class PropagationScope(Enum):
    NONE = 0
    OWN_HISTORY = 1
    LINEAGE = 2


class PropagationNotFoundError(Exception):
    """A query of a propagated history found nothing of that name."""


def scope_of(value: Any) -> PropagationScope | None:
    """``propagation=`` as a scope (None or NONE: nothing is propagated); ``TypeError`` otherwise."""
    if value is None:
        return None
    if isinstance(value, PropagationScope):
        return None if value is PropagationScope.NONE else value
    raise TypeError(f"propagation must be a PropagationScope, got {value!r}")


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


@dataclass(frozen=True)
class ActivityResult:
    """One activity call in a propagated history; ``input``/``output`` are JSON text, as Dapr's."""

    name: str
    started: bool
    completed: bool
    failed: bool
    input: str | None
    output: str | None
    error: dict[str, Any] | None


@dataclass(frozen=True)
class ChildWorkflowResult:
    name: str
    started: bool
    completed: bool
    failed: bool
    output: str | None
    error: dict[str, Any] | None


@dataclass(frozen=True)
class WorkflowResult:
    """One workflow's chunk of a propagated history; queries return the latest match."""

    instance_id: str
    app_id: str
    name: str
    events: list[dict[str, Any]] = field(repr=False)

    def _outcome(self, seq: int, done: str, failed: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        for event in self.events:
            if event.get("seq") == seq and event["kind"] in (done, failed):
                return (event, None) if event["kind"] == done else (None, event)
        return None, None

    def get_activities_by_name(self, name: str) -> list[ActivityResult]:
        out = []
        for event in self.events:
            if event["kind"] == "TaskScheduled" and event.get("name") == name:
                ok, bad = self._outcome(event["seq"], "TaskCompleted", "TaskFailed")
                out.append(ActivityResult(name, True, ok is not None, bad is not None, _text(event.get("input")),
                                          _text(ok.get("result")) if ok else None, bad.get("failure") if bad else None))
        return out

    def get_activity_by_name(self, name: str) -> ActivityResult:
        found = self.get_activities_by_name(name)
        if not found:
            raise PropagationNotFoundError(f"no activity named {name!r} in propagated history for workflow "
                                           f"{self.name!r}")
        return found[-1]

    get_last_activity_by_name = get_activity_by_name

    def get_child_workflows_by_name(self, name: str) -> list[ChildWorkflowResult]:
        out = []
        for event in self.events:
            if event["kind"] == "ChildScheduled" and event.get("name") == name:
                ok, bad = self._outcome(event["seq"], "ChildCompleted", "ChildFailed")
                out.append(ChildWorkflowResult(name, True, ok is not None, bad is not None,
                                               _text(ok.get("result")) if ok else None,
                                               bad.get("failure") if bad else None))
        return out

    def get_child_workflow_by_name(self, name: str) -> ChildWorkflowResult:
        found = self.get_child_workflows_by_name(name)
        if not found:
            raise PropagationNotFoundError(f"no child workflow named {name!r} in propagated history for workflow "
                                           f"{self.name!r}")
        return found[-1]

    get_last_child_workflow_by_name = get_child_workflow_by_name


class PropagatedHistory:
    """The history a caller propagated: its chunks oldest ancestor first, the immediate caller last."""

    def __init__(self, scope: PropagationScope, chunks: list[dict[str, Any]]) -> None:
        self._scope = scope
        self._chunks = chunks

    @classmethod
    def from_payload(cls, payload: Any) -> PropagatedHistory | None:
        if not payload:
            return None
        return cls(PropagationScope(payload["scope"]), list(payload["chunks"]))

    @property
    def scope(self) -> PropagationScope:
        return self._scope

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for c in self._chunks for e in c["events"]]

    def get_app_ids(self) -> list[str]:
        return list(dict.fromkeys(c["app_id"] for c in self._chunks))

    def get_events_by_app_id(self, app_id: str) -> list[dict[str, Any]]:
        return [e for c in self._chunks if c["app_id"] == app_id for e in c["events"]]

    def get_events_by_instance_id(self, instance_id: str) -> list[dict[str, Any]]:
        return [e for c in self._chunks if c["instance_id"] == instance_id for e in c["events"]]

    def get_events_by_workflow_name(self, name: str) -> list[dict[str, Any]]:
        return [e for c in self._chunks if c["workflow_name"] == name for e in c["events"]]

    def get_workflows(self) -> list[WorkflowResult]:
        return [WorkflowResult(c["instance_id"], c["app_id"], c["workflow_name"], c["events"]) for c in self._chunks]

    def get_workflows_by_name(self, name: str) -> list[WorkflowResult]:
        return [w for w in self.get_workflows() if w.name == name]

    def get_workflow_by_name(self, name: str) -> WorkflowResult:
        found = self.get_workflows_by_name(name)
        if not found:
            raise PropagationNotFoundError(f"no workflow named {name!r} in propagated history")
        return found[-1]


def propagated_payload(scope: PropagationScope, own: dict[str, Any], received: Any) -> dict[str, Any]:
    """What a call with ``scope`` carries: the caller's own chunk, after its received chunks for LINEAGE."""
    ancestors = list(received["chunks"]) if received and scope is PropagationScope.LINEAGE else []
    return {"scope": scope.value, "chunks": [*ancestors, own]}


__all__ = ["ActivityResult", "ChildWorkflowResult", "PropagatedHistory", "PropagationNotFoundError",
           "PropagationScope", "WorkflowResult", "propagated_payload", "scope_of"]
