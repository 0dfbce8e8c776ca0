"""Waiting helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator import WorkflowStatus


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finish(client: Any, instance_id: str, status: WorkflowStatus = WorkflowStatus.COMPLETED, timeout: float = 60) -> Any:
    """Wait for the instance to finish and assert it ended with ``status``; returns its state."""
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
    assert state.runtime_status == status, (state.runtime_status, state.failure_details)
    return state
