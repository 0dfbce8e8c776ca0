"""Activity heartbeats (issue 14): ``ctx.heartbeat(details)``, ``heartbeat_timeout=`` and
``start_to_close_timeout=`` on ``call_activity``. Real pools, real Redis, the engine's defaults."""

from __future__ import annotations

import time

from orchestrator import WorkflowStatus
from tests.apps.heartbeat_app import runs
from tests.support.store_keys import shard_total
from tests.support.waiting import wait_until

APP = "tests.apps.heartbeat_app"


def _state(client, iid, timeout=60):
    return client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)


def test_an_activity_heartbeating_for_three_heartbeat_timeouts_runs_once(client, start_pool, redis_client):
    start_pool(APP)
    iid = client.schedule_new_workflow("hb_long_wf", input=6.0)  # 3 x heartbeat_timeout (2 s)
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.COMPLETED and state.serialized_output == '"worked"'
    assert runs(redis_client, iid) == 1
    assert [e["kind"] for e in client.get_workflow_history(iid)].count("TaskScheduled") == 1
    assert shard_total(redis_client, "deadlines") == 0


def test_one_that_stops_heartbeating_is_retried_with_its_last_details(client, start_pool, redis_client):
    start_pool(APP, concurrency=2)
    iid = client.schedule_new_workflow("hb_resumes_wf", input=5)
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    assert state.serialized_output == '{"resumed_from": 3, "attempt": 2}'
    failed = [e for e in client.get_workflow_history(iid) if e["kind"] == "TaskFailed"]
    assert [f["failure"]["error_type"] for f in failed] == ["ActivityHeartbeatTimeoutError"]
    assert "sent no heartbeat for 2 s (heartbeat_timeout)" in failed[0]["failure"]["message"]


def test_a_killed_pool_s_heartbeating_activity_is_retried_after_the_heartbeat_timeout(client, start_pool,
                                                                                       redis_client):
    pool = start_pool(APP)
    iid = client.schedule_new_workflow("hb_long_wf", input=4.0)
    wait_until(lambda: runs(redis_client, iid) != 0, timeout=30, what="the heartbeating activity to start")
    time.sleep(0.5)
    pool.kill()
    killed = time.monotonic()
    start_pool(APP)
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert time.monotonic() - killed < 25  # not visibility_timeout (3600 s)
    failed = [e["failure"]["error_type"] for e in client.get_workflow_history(iid) if e["kind"] == "TaskFailed"]
    assert failed == ["ActivityHeartbeatTimeoutError"]  # its 2 s ran out before the 10 s process expiry
    assert runs(redis_client, iid) == 2


def test_a_start_to_close_timeout_counts_from_when_the_attempt_started(client, start_pool, redis_client):
    start_pool(APP)
    iid = client.schedule_new_workflow("hb_start_to_close_wf", input=5.0)
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "ActivityStartToCloseTimeoutError"
    assert "ran 1 s since it started (start_to_close_timeout)" in state.failure_details.message
    fast = client.schedule_new_workflow("hb_start_to_close_wf", input=0.1)
    assert _state(client, fast).runtime_status == WorkflowStatus.COMPLETED
