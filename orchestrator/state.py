"""WorkflowStatus and WorkflowState: an instance as the client reports it (Dapr's names and fields)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from .core.errors import FailureDetails
from .core.payload import from_payload
from .core.vocabulary import UNKNOWN_STATUS
from .store.redis_store import InstanceMeta


class WorkflowStatus(Enum):
    UNKNOWN = 0
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    TERMINATED = 4
    PENDING = 5
    SUSPENDED = 6
    STALLED = 7  # its recorded workflow version is registered by no pool; resumes when one that has it starts

    @classmethod
    def parse(cls, name: str) -> WorkflowStatus:
        try:
            return cls[name.upper()]
        except KeyError:
            valid = ", ".join(s.name for s in cls if s is not cls.UNKNOWN)
            raise ValueError(f"unknown workflow status {name!r}; expected one of {valid}") from None


def _dt(ms: int | None) -> datetime | None:
    """Naive UTC, as Dapr's ``WorkflowState`` times are."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None) if ms else None


def _iso(moment: datetime | None) -> str | None:
    return moment.replace(tzinfo=UTC).isoformat() if moment is not None else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


class WorkflowFailedError(RuntimeError):
    """``WorkflowState.raise_if_failed()`` of a FAILED instance: its failure's type and message."""

    def __init__(self, state: WorkflowState) -> None:
        failure = state.failure_details
        text = f"{failure.error_type}: {failure.message}" if failure is not None else "no failure details"
        super().__init__(f"workflow {state.name!r} instance {state.instance_id!r} failed: {text}")
        self.state = state
        self.failure_details = failure


class WorkflowState:
    """A snapshot of an instance, with Dapr's fields: ``serialized_input`` / ``serialized_output`` /
    ``serialized_custom_status`` are JSON text as Dapr's (a string custom status is that string, as
    it was set); ``input`` / ``output`` / ``custom_status`` (our extension) are the decoded values, with
    objects as ``SimpleNamespace`` as workflow code sees them. Times are naive UTC, as Dapr's."""

    def __init__(self, meta: InstanceMeta, fetch_payloads: bool = True) -> None:
        self.instance_id = meta.instance_id
        self.name = meta.name
        self.app_id = meta.app
        known = meta.status != UNKNOWN_STATUS
        self.runtime_status = WorkflowStatus.parse(meta.status) if known else WorkflowStatus.UNKNOWN
        if meta.stalled and not meta.is_terminal:
            self.runtime_status = WorkflowStatus.STALLED  # its recorded version: no pool that tried has it
        self.created_at = _dt(meta.created)
        self.last_updated_at = _dt(meta.updated)
        self.completed_at = _dt(meta.completed)
        self.parent_instance_id = meta.parent
        self.workflow_version = meta.workflow_version
        self.rerun_of = meta.rerun_of
        self.failure_details: FailureDetails | None = meta.failure
        self._raw = (meta.input, meta.output, meta.custom_status) if fetch_payloads else (None, None, None)
        raw_input, raw_output, raw_status = self._raw
        self.input = from_payload(raw_input)
        self.output = from_payload(raw_output)
        self.custom_status = from_payload(raw_status)
        self.serialized_input = _json(raw_input)
        self.serialized_output = _json(raw_output)
        self.serialized_custom_status = raw_status if isinstance(raw_status, str) else _json(raw_status)

    def raise_if_failed(self) -> None:
        """Raise ``WorkflowFailedError`` naming the failure when the instance FAILED (Dapr's helper)."""
        if self.runtime_status == WorkflowStatus.FAILED:
            raise WorkflowFailedError(self)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON types (payloads as stored, times as ISO 8601 with ``+00:00``): what the
        HTTP API, the CLI and history exports show."""
        raw_input, raw_output, raw_status = self._raw
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "app_id": self.app_id,
            "runtime_status": self.runtime_status.name,
            "created_at": _iso(self.created_at),
            "last_updated_at": _iso(self.last_updated_at),
            "completed_at": _iso(self.completed_at),
            "parent_instance_id": self.parent_instance_id,
            "workflow_version": self.workflow_version,
            "rerun_of": self.rerun_of,
            "input": raw_input,
            "output": raw_output,
            "custom_status": raw_status,
            "failure_details": self.failure_details.to_dict() if self.failure_details else None,
        }

    def to_json(self) -> dict[str, Any]:
        """Dapr's ``to_json()``: a dict of the Dapr fields (times as ISO 8601 text, so ``json.dumps`` takes it)."""
        failure = self.failure_details
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "runtime_status": self.runtime_status.name,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "last_updated_at": self.last_updated_at.isoformat() if self.last_updated_at else None,
            "serialized_input": self.serialized_input,
            "serialized_output": self.serialized_output,
            "serialized_custom_status": self.serialized_custom_status,
            "failure_details": None if failure is None else {
                "message": failure.message, "error_type": failure.error_type, "stack_trace": failure.stack_trace},
        }

    def __str__(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)

    def __repr__(self) -> str:
        return f"WorkflowState({self.instance_id!r}, {self.name!r}, {self.runtime_status.name})"
