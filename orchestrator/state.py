"""WorkflowStatus and WorkflowState: an instance as the client reports it (Dapr's names and fields)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from .core.errors import FailureDetails
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

    @classmethod
    def parse(cls, name: str) -> WorkflowStatus:
        try:
            return cls[name.upper()]
        except KeyError:
            valid = ", ".join(s.name for s in cls if s is not cls.UNKNOWN)
            raise ValueError(f"unknown workflow status {name!r}; expected one of {valid}") from None


def _dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


class WorkflowState:
    """A snapshot of an instance. ``serialized_*`` are JSON strings as in Dapr; ``input``/``output``/
    ``custom_status`` are the decoded values."""

    def __init__(self, meta: InstanceMeta, fetch_payloads: bool = True) -> None:
        self.instance_id = meta.instance_id
        self.name = meta.name
        self.app_id = meta.app
        known = meta.status != UNKNOWN_STATUS
        self.runtime_status = WorkflowStatus.parse(meta.status) if known else WorkflowStatus.UNKNOWN
        self.created_at = _dt(meta.created)
        self.last_updated_at = _dt(meta.updated)
        self.completed_at = _dt(meta.completed)
        self.parent_instance_id = meta.parent
        self.workflow_version = meta.workflow_version
        self.rerun_of = meta.rerun_of
        self.failure_details: FailureDetails | None = meta.failure
        self.input = meta.input if fetch_payloads else None
        self.output = meta.output if fetch_payloads else None
        self.custom_status = meta.custom_status if fetch_payloads else None
        self.serialized_input = _json(self.input)
        self.serialized_output = _json(self.output)
        self.serialized_custom_status = _json(self.custom_status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "app_id": self.app_id,
            "runtime_status": self.runtime_status.name,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "last_updated_at": self.last_updated_at.isoformat() if self.last_updated_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "parent_instance_id": self.parent_instance_id,
            "workflow_version": self.workflow_version,
            "rerun_of": self.rerun_of,
            "input": self.input,
            "output": self.output,
            "custom_status": self.custom_status,
            "failure_details": self.failure_details.to_dict() if self.failure_details else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        return f"WorkflowState({self.instance_id!r}, {self.name!r}, {self.runtime_status.name})"
