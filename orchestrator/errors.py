"""Every error the package raises, importable from one place (the tree is drawn in ``core/errors.py``).

``StoreError`` / ``StoreUnavailable`` are what a call raises when the Redis store cannot be used
(redis-py's errors: see ``store/connection.py``), so that callers, the command line included, catch
them without importing the store.
"""

from __future__ import annotations

from .core.errors import (
    ActivityHeartbeatTimeoutError,
    ActivityNotRegisteredError,
    ActivityStartToCloseTimeoutError,
    ActivityTimeoutError,
    ActivityWorkerLostError,
    CircuitOpenError,
    FailureDetails,
    IdempotencyKeyReusedError,
    InstanceAlreadyExistsError,
    InstanceFinishedError,
    InstanceNotFoundError,
    InstanceRunningError,
    NonDeterminismError,
    OrchestratorError,
    PayloadError,
    PayloadTooLargeError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    StepWorkerLostError,
    TaskFailedError,
    WorkflowNotRegisteredError,
    WorkflowStepDeadlineError,
)
from .core.history import HistoryFormatError
from .core.rerun import RerunError
from .core.retry import NonRetryableError
from .store.connection import RedisAuthError, RedisUnavailableError, StoreError, StoreUnavailable

__all__ = [
    "ActivityHeartbeatTimeoutError", "ActivityNotRegisteredError", "ActivityStartToCloseTimeoutError",
    "ActivityTimeoutError", "ActivityWorkerLostError", "CircuitOpenError",
    "FailureDetails", "HistoryFormatError",
    "IdempotencyKeyReusedError",
    "InstanceAlreadyExistsError", "InstanceFinishedError", "InstanceNotFoundError", "InstanceRunningError",
    "NonDeterminismError", "NonRetryableError", "OrchestratorError", "PayloadError", "PayloadTooLargeError",
    "RedisAuthError",
    "RedisUnavailableError", "RerunError", "ScheduleExistsError", "ScheduleNotFoundError", "StepWorkerLostError",
    "StoreError", "StoreUnavailable", "TaskFailedError", "WorkflowNotRegisteredError", "WorkflowStepDeadlineError",
]
