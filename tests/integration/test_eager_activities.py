"""Eager activities: a chain's next activity runs in the process that stepped it, without a message."""

from __future__ import annotations

import json
import os
import re
import signal
import time

from orchestrator import WorkflowStatus
from orchestrator.core.history import TaskCompleted
from tests.support.waiting import wait_until

APP = "tests.apps.core_app"
# A generous budget, so a slow CI machine cannot end an eager run early and change the counts.
ROOMY = {"ORCH_MESSAGE_BUDGET_SECONDS": "30"}


def activity_messages(pool, iid: str) -> int:
    """Activity messages of ``iid`` the pool received: Celery logs 'received' before it runs one, so
    once the workflow has completed, every message it had is counted."""
    log = pool.log_path.read_text()
    return len(re.findall(rf"Task orchestrator\.activity\[{re.escape(iid)}\|[^\]]+\] received", log))


def completed(client, iid, timeout=60):
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state.runtime_status == WorkflowStatus.COMPLETED, (state.runtime_status, state.failure_details)
    return state


def test_a_chain_runs_its_activities_eagerly_from_the_start_s_step_message(client, start_pool):
    pool = start_pool(APP, env={**ROOMY, "ORCH_EAGER_ACTIVITY_HOPS": "16"})
    iid = client.schedule_new_workflow("chain", input=10)
    assert completed(client, iid).output == sum(range(10))
    # Calls 1..10 each ran in the process that stepped it: the start's step message is the only one.
    assert activity_messages(pool, iid) == 0
    history = client.store.get_history(iid)
    assert sorted(e.seq for e in history if isinstance(e, TaskCompleted)) == list(range(1, 11))


def test_hops_bound_an_eager_run_and_zero_turns_it_off(client, start_pool):
    pool = start_pool(APP, env={**ROOMY, "ORCH_EAGER_ACTIVITY_HOPS": "3"})
    bounded = client.schedule_new_workflow("chain", input=10)
    completed(client, bounded)
    # The step message runs calls 1-3; each activity message its own call and at most 3 more: calls 4
    # and 8 arrive by message.
    assert activity_messages(pool, bounded) == 2
    pool.stop()

    pool = start_pool(APP, env={**ROOMY, "ORCH_EAGER_ACTIVITY_HOPS": "0"})
    off = client.schedule_new_workflow("chain", input=10)
    completed(client, off)
    assert activity_messages(pool, off) == 10


def test_a_process_killed_in_an_eager_activity_has_it_queued_by_the_redelivery(client, start_pool, redis_client):
    """Only the redelivered message can bring the eager call back quickly: the sweeper would wait for
    the visibility timeout, here 300 s."""
    pool = start_pool(APP, env={**ROOMY, "ORCH_EAGER_ACTIVITY_HOPS": "16", "ORCH_VISIBILITY_TIMEOUT": "300"})
    iid = client.schedule_new_workflow("nap_chain", input={"n": 4, "nap": 1.0})
    wait_until(lambda: redis_client.hget("core:nap_pid", "2") is not None, timeout=30,
               what="call 3 to start")  # call 3 (i=2) runs eagerly
    os.kill(int(redis_client.hget("core:nap_pid", "2")), signal.SIGKILL)

    began = time.monotonic()
    state = completed(client, iid, timeout=60)
    assert time.monotonic() - began < 30  # far below the 300 s visibility timeout
    assert json.loads(state.serialized_output) == [0, 1, 2, 3]
    assert int(redis_client.hget("core:nap_runs", "2")) == 2  # killed once, run again once
    assert "was running eagerly under a message that came back; queueing it" in pool.log_path.read_text()
