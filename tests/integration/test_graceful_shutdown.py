"""Graceful shutdown (issue 14): SIGTERM (a deploy) finishes or hands back in-flight work within
``shutdown_grace`` and deregisters; nothing waits for a timeout after a rolling restart. Real pools,
real Redis, the engine's defaults (the grace test shortens only the grace it tests)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from orchestrator import WorkflowStatus
from tests.apps.heartbeat_app import runs
from tests.support.waiting import wait_until

APP = "tests.apps.heartbeat_app"


def test_sigterm_during_a_fan_out_of_200_hands_everything_back_to_the_next_pool(client, start_pool, redis_client):
    first = start_pool(APP, concurrency=2)
    iid = client.schedule_new_workflow("hb_fan_out", input=200)

    def done() -> int:  # the results wait in the inbox until the fan-in: count the runs
        return runs(redis_client, iid)

    wait_until(lambda: done() >= 20, what="20 activities to run")
    os.killpg(first.proc.pid, signal.SIGTERM)
    stopped = time.monotonic()
    first.proc.wait(60)
    assert time.monotonic() - stopped < 30, "the pool did not stop within its grace"
    assert done() < 200, "the fan-out finished before the restart: nothing was handed back"
    pid = first.proc.pid
    assert all(p.pid != pid and p.host for p in client.store.liveness.processes()), "it did not deregister"
    began = time.monotonic()
    second = start_pool(APP, concurrency=2)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    assert state.runtime_status == WorkflowStatus.COMPLETED and state.serialized_output == "200"
    per_seq = Counter(e["seq"] for e in client.get_workflow_history(iid) if e["kind"] == "TaskCompleted")
    assert len(per_seq) == 200 and set(per_seq.values()) == {1}
    # Handed back, none lost: a SIGTERM sent to the whole group (as a container stop does) interrupts
    # the children's running attempts (billiard's own handler), which run again: at most one per
    # child and message (a batch message holds up to two of this fan-out's attempts).
    assert 200 <= done() <= 200 + 2 * 2
    # No attempt waited for a timeout: no process expiry had to be reaped, and the rest took seconds.
    assert "stopped heartbeating" not in second.log_path.read_text()
    assert time.monotonic() - began < 40


def test_work_still_running_when_the_grace_is_over_is_handed_back_at_once(client, start_pool):
    first = start_pool(APP, concurrency=1, env={"ORCH_SHUTDOWN_GRACE": "2"})
    iid = client.schedule_new_workflow("hb_slow_wf", input=6.0)
    wait_until(lambda: _held_by(client, first.proc.pid), what="the first pool to take the activity")
    start_pool(APP, concurrency=1)
    os.kill(first.proc.pid, signal.SIGTERM)  # to the pool process only (as Kubernetes stops PID 1): its child runs on
    stopped = time.monotonic()
    first.proc.wait(30)
    assert time.monotonic() - stopped < 6  # the grace (2 s), not the activity's 6 s
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=40)
    assert state.runtime_status == WorkflowStatus.COMPLETED and state.serialized_output == '"slow"'
    assert "shutdown grace (2 s, setting shutdown_grace) is over" in first.log_path.read_text()


def _held_by(client, pool_pid: int) -> bool:
    """Does a child of the pool whose Celery parent is ``pool_pid`` hold claimed work?"""
    r = client.store.redis
    for p in client.store.liveness.processes():
        ppid = r.hget(client.store.keys.process(p.process_id), "ppid")
        if p.work and ppid is not None and int(ppid) == pool_pid:
            return True
    return False
