"""Issue 19, class 4: code that starves the pool. A workflow step that loops without yielding (or blocks in
workflow code) is stopped by the step deadline (2 s by default, Temporal's deadlock detector) and its
instance fails with WorkflowStepDeadlineError; the pool goes on serving the others. Obvious
nondeterminism (datetime.now, random in workflow code) is flagged, and fails the instance in strict
mode. Real pools, real Redis, the engine's default settings."""

from __future__ import annotations

import time

from orchestrator import WorkflowStatus

APP = "tests.apps.poison_app"


def _finished(client, iid, timeout=60):
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state is not None and state.runtime_status in (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED), state
    return state


def test_a_step_that_never_yields_is_stopped_and_others_keep_being_served(client, start_pool):
    pool = start_pool(APP, concurrency=2)
    began = time.monotonic()
    spinners = [client.schedule_new_workflow("poison_spin") for _ in range(3)]  # more than the pool's processes
    others = [client.schedule_new_workflow("poison_ok", input=i) for i in range(5)]
    for iid in others:
        state = _finished(client, iid)
        assert state.runtime_status == WorkflowStatus.COMPLETED
    for iid in spinners:
        state = _finished(client, iid)
        assert state.runtime_status == WorkflowStatus.FAILED
        assert state.failure_details.error_type == "WorkflowStepDeadlineError"
        assert "workflow 'poison_spin' ran 2 s without yielding (setting step_deadline)" in \
            state.failure_details.message
    # Each was stopped at its deadline: three spinners on two processes took two rounds, not forever.
    assert time.monotonic() - began < 30
    assert pool.proc.poll() is None
    again = client.schedule_new_workflow("poison_ok", input="after")
    assert _finished(client, again).runtime_status == WorkflowStatus.COMPLETED


def test_blocking_work_in_workflow_code_past_the_deadline_fails_the_instance(client, start_pool):
    pool = start_pool(APP, concurrency=2)
    # Blocked (not burning CPU) counts after 5 deadlines, 10 s: a paused or starved process is not stuck.
    iid = client.schedule_new_workflow("poison_blocks", input=11.0)
    state = _finished(client, iid)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "WorkflowStepDeadlineError"
    short = client.schedule_new_workflow("poison_blocks", input=3.0)  # blocked briefly: not stopped
    assert _finished(client, short).runtime_status == WorkflowStatus.COMPLETED
    assert pool.proc.poll() is None


def test_reading_the_clock_in_workflow_code_is_flagged_and_fails_in_strict_mode(client, start_pool, tmp_path):
    lenient = start_pool(APP, concurrency=1)
    iid = client.schedule_new_workflow("poison_clock")
    assert _finished(client, iid).runtime_status == WorkflowStatus.COMPLETED
    deadline = time.monotonic() + 10
    while "workflow 'poison_clock' calls datetime.datetime.now (line" not in lenient.log_path.read_text():
        assert time.monotonic() < deadline, lenient.log_tail()
        time.sleep(0.05)
    assert "random.random (line" in lenient.log_path.read_text()
    lenient.stop()
    start_pool(APP, concurrency=1, env={"ORCH_STRICT_DETERMINISM": "true"})
    strict = client.schedule_new_workflow("poison_clock")
    state = _finished(client, strict)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "NonDeterminismError"
    assert "calls datetime.datetime.now (line" in state.failure_details.message
    assert "setting strict_determinism" in state.failure_details.message
    ok = client.schedule_new_workflow("poison_ok", input="strict")
    assert _finished(client, ok).runtime_status == WorkflowStatus.COMPLETED
