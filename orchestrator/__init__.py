"""A durable workflow orchestrator on Celery and Redis, with the Dapr Workflow Python API.

Dapr workflow code runs after changing its import line::

    from orchestrator import (DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime,
                              DaprWorkflowClient, RetryPolicy, when_all, when_any)
"""

from .client import DaprWorkflowClient, WorkflowClient
from .core.context import DaprWorkflowContext, WorkflowContext
from .core.errors import (
    ActivityNotRegisteredError,
    ActivityTimeoutError,
    CircuitOpenError,
    FailureDetails,
    InstanceAlreadyExistsError,
    InstanceFinishedError,
    InstanceNotFoundError,
    InstanceRunningError,
    NonDeterminismError,
    OrchestratorError,
    PayloadError,
    TaskFailedError,
    WorkflowNotRegisteredError,
)
from .core.retry import NonRetryableError, RetryPolicy
from .core.tasks import Task, when_all, when_any
from .runtime import WorkflowRuntime
from .settings import Settings, load_settings
from .state import WorkflowState, WorkflowStatus
from .store.connection import RedisAuthError, RedisUnavailableError
from .worker.activities import ActivityContext

WorkflowActivityContext = ActivityContext

__all__ = [
    "ActivityContext", "ActivityNotRegisteredError", "ActivityTimeoutError", "CircuitOpenError", "DaprWorkflowClient", "DaprWorkflowContext",
    "FailureDetails", "InstanceAlreadyExistsError", "InstanceFinishedError", "InstanceNotFoundError",
    "InstanceRunningError", "NonDeterminismError", "NonRetryableError", "OrchestratorError", "PayloadError",
    "RedisAuthError", "RedisUnavailableError",
    "RetryPolicy", "Settings", "Task", "TaskFailedError", "WorkflowActivityContext", "WorkflowClient",
    "WorkflowContext", "WorkflowNotRegisteredError", "WorkflowRuntime", "WorkflowState", "WorkflowStatus",
    "load_settings", "when_all", "when_any",
]
