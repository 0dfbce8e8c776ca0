"""Core engine acceptance: real redis-server, real worker pool processes, real SIGKILL."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from orchestrator import (
    InstanceNotFoundError,
    PayloadError,
    WorkflowNotRegisteredError,
    WorkflowStatus,
)
from orchestrator.core.history import StepStarted
from orchestrator.store.redis_store import RedisStore
from orchestrator.store.step_io import Commit
from tests.support.store_keys import shard_total
from tests.support.waiting import wait_until

APP = "tests.apps.core_app"


def completed(client, instance_id, timeout=60):
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
    assert state.runtime_status == WorkflowStatus.COMPLETED, (state.runtime_status, state.failure_details)
    return state.output


def test_chain_of_ten(client, start_pool):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("chain", input=10)
    assert completed(client, instance_id) == sum(range(10))


def test_fan_out_fan_in_of_200_wakes_only_a_few_times(client, start_pool):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("fan_out", input=200)
    output = completed(client, instance_id)
    assert output == {"count": 200, "sum": 2 * sum(range(200)), "first": [0, 2, 4]}
    history = client.get_workflow_history(instance_id)
    assert sum(e["kind"] == "TaskCompleted" for e in history) == 200
    # Chord-like fan-in: the 200 results are consumed by a handful of steps, not 200.
    assert sum(e["kind"] == "StepStarted" for e in history) <= 10


def test_when_any_of_activities_returns_the_winner(client, start_pool):
    start_pool(APP, concurrency=2)
    instance_id = client.schedule_new_workflow("race")
    assert completed(client, instance_id) == {"fast_won": True, "value": 2}


def test_activity_failure_reaches_workflow_as_task_failed_error(client, start_pool):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("catches_failure", input="no such key")
    assert completed(client, instance_id) == {"error_type": "KeyError", "message": "'no such key'", "has_stack": True}


def test_unhandled_activity_failure_fails_the_workflow_with_details(client, start_pool):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("lets_failure_escape", input="missing")
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "KeyError"
    assert state.failure_details.message == "Activity task #1 ('explode') failed: 'missing'"  # Dapr's chained text
    assert "explode" in state.failure_details.stack_trace


def test_pool_killed_mid_run_recovers_and_records_each_completion_once(client, start_pool, redis_client):
    pool = start_pool(APP, concurrency=2)
    instance_id = client.schedule_new_workflow("slow_chain", input=20)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = sum(e["kind"] == "TaskCompleted" for e in client.get_workflow_history(instance_id))
        if done >= 6:
            break
        time.sleep(0.02)
    assert 6 <= done < 20, f"expected to kill mid-run, saw {done} completions"
    pool.kill()
    assert client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.RUNNING
    start_pool(APP, concurrency=2)
    assert completed(client, instance_id, timeout=60) == sum(range(20))
    history = client.get_workflow_history(instance_id)
    per_seq = Counter(e["seq"] for e in history if e["kind"] == "TaskCompleted")
    assert sorted(per_seq) == list(range(1, 21)) and set(per_seq.values()) == {1}
    assert shard_total(redis_client, "outbox") == 0 and shard_total(redis_client, "ready") == 0


def test_two_steps_computed_from_one_version_commit_exactly_once(client, redis_server):
    store = RedisStore.from_url(redis_server.url)
    store.register_workflows("nobody", ["chain"])
    instance_id = client.schedule_new_workflow("chain", input=1, instance_id="race-1")
    snap = store.load(instance_id)
    barrier = threading.Barrier(2)
    results = []

    def commit(tag: int) -> None:
        c = Commit(version=snap.meta.version, now=tag, status="RUNNING",
                   consumed=[e.entry_id for e in snap.inbox],
                   events=[StepStarted(ts=tag)] + [e.event for e in snap.inbox])
        barrier.wait()
        results.append(store.commit(instance_id, c).ok)

    threads = [threading.Thread(target=commit, args=(t,)) for t in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    history = store.get_history(instance_id)
    assert sum(isinstance(e, StepStarted) for e in history) == 1
    assert store.load(instance_id).inbox == []


def test_racing_engines_on_one_instance_never_duplicate_history(client, start_pool, redis_server):
    """Many step messages for one instance at once (duplicated deliveries): one effect each."""
    start_pool(APP, concurrency=4)
    instance_id = client.schedule_new_workflow("chain", input=15)
    for _ in range(30):
        client._publisher.send_step(instance_id, "default")
    completed(client, instance_id)
    history = client.get_workflow_history(instance_id)
    assert Counter(e["seq"] for e in history if e["kind"] == "TaskScheduled") == {s: 1 for s in range(1, 16)}
    assert sum(e["kind"] == "ExecutionCompleted" for e in history) == 1


def test_changed_code_fails_instance_with_nondeterminism_and_keeps_history(client, start_pool):
    pool = start_pool(APP, env={"CORE_APP_VERSION": "1"})
    instance_id = client.schedule_new_workflow("evolving")
    wait_until(lambda: any(e["kind"] == "TaskCompleted" for e in client.get_workflow_history(instance_id)),
               timeout=20, what="the first activity's completion")
    time.sleep(0.3)  # let the step that consumed the result commit
    before = client.get_workflow_history(instance_id)
    pool.stop()
    start_pool(APP, env={"CORE_APP_VERSION": "2"})
    client.raise_workflow_event(instance_id, "go", data="yes")
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "NonDeterminismError"
    assert "'add'" in state.failure_details.message and "'slow_add'" in state.failure_details.message
    assert client.get_workflow_history(instance_id) == before


def test_bad_calls_fail_at_the_call(client, start_pool):
    start_pool(APP)
    with pytest.raises(WorkflowNotRegisteredError, match="no_such_workflow"):
        client.strict().schedule_new_workflow("no_such_workflow", input=1)  # setting strict_start
    with pytest.raises(PayloadError, match="set"):
        client.schedule_new_workflow("chain", input={1, 2})
    with pytest.raises(InstanceNotFoundError, match="ghost"):
        client.raise_workflow_event("ghost", "go")
    with pytest.raises(ValueError, match="invalid instance id"):
        client.schedule_new_workflow("chain", input=1, instance_id="has space")


def test_plain_celery_worker_runs_workflows(client, redis_server, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, pool_environment, store_env

    env = pool_environment(redis_server.url, store_env(redis_server))
    log = open(tmp_path / "celery.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", f"{APP}:celery_app", "worker",
                             "-Q", "orchestrator.default", "-c", "2", "-l", "INFO"],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while client.store.workflow_app("chain") is None:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "celery.log").read_text()
            time.sleep(0.1)
        instance_id = client.schedule_new_workflow("chain", input=5)
        assert completed(client, instance_id) == 10
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
