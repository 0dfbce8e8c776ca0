"""A durable workflow orchestrator on Celery and Redis, with the Dapr Workflow Python API.

Dapr workflow code runs after changing its import line::

    from orchestrator import (DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime,
                              DaprWorkflowClient, RetryPolicy, when_all, when_any)

The public names are loaded lazily (PEP 562): ``import orchestrator.core.replay`` loads the pure
core alone, without Redis, Celery or kombu; ``from orchestrator import WorkflowRuntime`` loads what
that name needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded at once (the pure core's interceptors: dataclasses and typing, no transport): its __all__
# names the interceptor exports below and, for type checkers, the star import at the end.
from . import interceptors as _interceptors

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "DaprWorkflowClient": "client",
    "WorkflowClient": "client",
    "DaprWorkflowContext": "core.context",
    "WorkflowContext": "core.context",
    "ActivityNotRegisteredError": "core.errors",
    "ActivityTimeoutError": "core.errors",
    "CircuitOpenError": "core.errors",
    "FailureDetails": "core.errors",
    "IdempotencyKeyReusedError": "core.errors",
    "InstanceAlreadyExistsError": "core.errors",
    "InstanceFinishedError": "core.errors",
    "InstanceNotFoundError": "core.errors",
    "InstanceRunningError": "core.errors",
    "NonDeterminismError": "core.errors",
    "OrchestratorError": "core.errors",
    "PayloadError": "core.errors",
    "PayloadTooLargeError": "core.errors",
    "TaskFailedError": "core.errors",
    "WorkflowNotRegisteredError": "core.errors",
    "NonRetryableError": "core.retry",
    "RetryPolicy": "core.retry",
    "Task": "core.tasks",
    "when_all": "core.tasks",
    "when_any": "core.tasks",
    "WorkflowRuntime": "runtime",
    "alternate_name": "runtime",
    "PropagationScope": "core.propagation",
    "PropagationNotFoundError": "core.propagation",
    "PropagatedHistory": "core.propagation",
    "LoggerOptions": "logger",
    "Settings": "settings",
    "load_settings": "settings",
    "WorkflowState": "state",
    "WorkflowStatus": "state",
    "WorkflowFailedError": "state",
    "RedisAuthError": "store.connection",
    "RedisUnavailableError": "store.connection",
    "ActivityContext": "worker.activities",
    **dict.fromkeys(_interceptors.__all__, "core.interceptors"),  # Dapr's, as ``dapr.ext.workflow.interceptors``
}
_ALIASES = {"WorkflowActivityContext": "ActivityContext"}

__all__ = sorted([*_EXPORTS, *_ALIASES])


def __getattr__(name: str) -> Any:
    target = _ALIASES.get(name, name)
    module = _EXPORTS.get(target)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), target)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from .client import DaprWorkflowClient, WorkflowClient
    from .core.context import DaprWorkflowContext, WorkflowContext
    from .core.errors import (
        ActivityNotRegisteredError,
        ActivityTimeoutError,
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
        TaskFailedError,
        WorkflowNotRegisteredError,
    )
    from .core.propagation import PropagatedHistory, PropagationNotFoundError, PropagationScope
    from .core.retry import NonRetryableError, RetryPolicy
    from .core.tasks import Task, when_all, when_any
    from .interceptors import *  # noqa: F403  (its __all__: the interceptor names of _EXPORTS)
    from .logger import LoggerOptions
    from .runtime import WorkflowRuntime, alternate_name
    from .settings import Settings, load_settings
    from .state import WorkflowFailedError, WorkflowState, WorkflowStatus
    from .store.connection import RedisAuthError, RedisUnavailableError
    from .worker.activities import ActivityContext
    from .worker.activities import ActivityContext as WorkflowActivityContext
