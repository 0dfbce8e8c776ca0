"""Issue 19, class 3: code that takes the pool down. Workflow code raising SystemExit, KeyboardInterrupt or
a bare BaseException fails its instance, not the process; an activity raising SystemExit or killing
its own process is retried per its policy and then fails the run (a lost attempt counts as a failed
attempt: poison-message protection). Real pools, real Redis, the engine's default settings."""

from __future__ import annotations

import pytest

from orchestrator import WorkflowStatus
from orchestrator.core.vocabulary import LOST_SUFFIX
from tests.apps.poison_app import runs
from tests.support.store_keys import KEYS

APP = "tests.apps.poison_app"


def _finished(client, iid, timeout=90):
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state is not None and state.runtime_status in (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED), state
    return state


def _still_serving(client, pool, tag):
    """Another instance runs to completion on the same pool, whose process is still the same one."""
    iid = client.schedule_new_workflow("poison_ok", input=tag)
    state = _finished(client, iid, timeout=60)
    assert (state.runtime_status, state.serialized_output) == (WorkflowStatus.COMPLETED, f'"{tag}"')
    assert pool.proc.poll() is None, pool.log_tail()


@pytest.fixture
def poison_pool(start_pool):
    return start_pool(APP, concurrency=2)


@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt", "BaseException"])
def test_a_base_exception_in_workflow_code_fails_the_instance_not_the_process(client, poison_pool, kind):
    iid = client.schedule_new_workflow("poison_raises", input=kind)
    state = _finished(client, iid)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == kind
    _still_serving(client, poison_pool, f"after {kind}")
    assert "WorkerLostError" not in poison_pool.log_path.read_text()  # no process died


def test_an_activity_raising_system_exit_is_retried_per_policy_then_fails_the_run(client, poison_pool, redis_client):
    iid = client.schedule_new_workflow("poison_activity_exit")
    state = _finished(client, iid)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "SystemExit"
    assert runs(redis_client, iid) == 2  # max_number_of_attempts=2, each a clean failure
    attempts = [e["attempt"] for e in client.get_workflow_history(iid) if e["kind"] == "TaskScheduled"]
    assert attempts == [1, 2]
    _still_serving(client, poison_pool, "after SystemExit")


def test_an_activity_killing_its_process_counts_as_failed_attempts_and_fails_the_run(client, poison_pool,
                                                                                     redis_client):
    iid = client.schedule_new_workflow("poison_activity_kill")
    state = _finished(client, iid, timeout=120)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "ActivityWorkerLostError"
    assert "was lost 2 times with the worker process running it" in state.failure_details.message
    # Each of the policy's 2 attempts: run, lost, run again (lost_attempt_retries = 1), lost: failed.
    assert runs(redis_client, iid) == 4
    attempts = [e["attempt"] for e in client.get_workflow_history(iid) if e["kind"] == "TaskScheduled"]
    assert attempts == [1, 2]
    _still_serving(client, poison_pool, "after os._exit")
    # No lost count is left behind (they live in the claims hash: worker/liveness.py).
    assert [f for s in KEYS.shards() for f in redis_client.hkeys(s.claims) if f.endswith(LOST_SUFFIX.encode())] == []


def test_workflow_code_killing_its_process_fails_the_instance_after_a_retry(client, poison_pool, redis_client):
    iid = client.schedule_new_workflow("poison_step_kill")
    state = _finished(client, iid, timeout=120)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "StepWorkerLostError"
    assert "was lost 2 times with the worker process running it" in state.failure_details.message
    _still_serving(client, poison_pool, "after a step killed its process")
