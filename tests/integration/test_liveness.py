"""Worker liveness (issue 14), with the engine's DEFAULT settings (visibility_timeout 3600 s): a pool
killed with SIGKILL has its work resumed by the next pool within seconds, not after the timeout."""

from __future__ import annotations

import time
from collections import Counter

from orchestrator import WorkflowStatus
from tests.apps.reliability_app import executions

CORE = "tests.apps.core_app"
REL = "tests.apps.reliability_app"


def _state(client, iid, timeout=60):
    return client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)


def _wait(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_sigkilled_pool_s_chain_continues_within_15_s_of_a_new_pool(client, start_pool, redis_client):
    pool = start_pool(CORE, concurrency=2)
    iid = client.schedule_new_workflow("slow_chain", input=20)

    def completions():
        return sum(e["kind"] == "TaskCompleted" for e in client.get_workflow_history(iid))

    _wait(lambda: completions() >= 5, what="five completions")
    pool.kill()
    began = time.monotonic()
    new = start_pool(CORE, concurrency=2)
    pool_start = time.monotonic() - began
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    assert state.output == sum(range(20))
    history = client.get_workflow_history(iid)
    stamps = [e["ts"] for e in history if e["kind"] in ("TaskCompleted", "StepStarted")]
    gap = max(b - a for a, b in zip(stamps, stamps[1:])) / 1000
    # The kill's gap: the old pool's heartbeat expires (10 s), the next sweep (2 s) reaps it.
    assert gap < 15 + pool_start, f"the chain stood still {gap:.1f} s (pool start {pool_start:.1f} s)"
    per_seq = Counter(e["seq"] for e in history if e["kind"] == "TaskCompleted")
    assert sorted(per_seq) == list(range(1, 21)) and set(per_seq.values()) == {1}
    assert "stopped heartbeating" in new.log_path.read_text()
    # The dead processes are gone from the registry; the new pool's are there.
    live = client.store.liveness.processes()
    assert live and all(p.heartbeat >= int(time.time() * 1000) - 10_000 for p in live)


def test_a_long_activity_of_a_killed_pool_runs_again_after_the_process_expiry(client, start_pool, redis_client):
    pool = start_pool(REL, concurrency=2)
    iid = client.schedule_new_workflow("rel_one", input={"value": "done", "sleep": 4})
    _wait(lambda: executions(redis_client, iid, 1) == 1, what="the activity to start")
    pool.kill()
    killed = time.monotonic()
    start_pool(REL, concurrency=2)
    state = _state(client, iid, timeout=40)
    assert state.runtime_status == WorkflowStatus.COMPLETED and state.output == "done"
    assert time.monotonic() - killed < 30  # not visibility_timeout (3600 s)
    assert executions(redis_client, iid, 1) == 2  # at least once: the lost run, then the retry
    assert [e["seq"] for e in client.get_workflow_history(iid) if e["kind"] == "TaskCompleted"] == [1]
    assert redis_client.hlen("orch:claims") == 0 and redis_client.hlen("orch:lost") == 0


def test_a_copy_of_an_attempt_a_live_process_runs_is_skipped(client, start_pool, redis_client):
    """Kombu redelivers a message after visibility_timeout even while its activity still runs; the
    copy finds the attempt claimed by a live process and is dropped: it runs once."""
    from orchestrator.store import records
    from orchestrator.worker.celery_app import CeleryPublisher, create_celery_app

    pool = start_pool(REL, concurrency=2)
    iid = client.schedule_new_workflow("rel_one", input={"value": "once", "sleep": 3}, instance_id="copied")
    _wait(lambda: executions(redis_client, iid, 1) == 1, what="the activity to start")
    meta = client.store.get_meta(iid)
    record = records.activity_record(meta, 1, "rel_echo", {"value": "once", "sleep": 3}, None, 1)
    CeleryPublisher(create_celery_app(client.settings)).send_activity(record, "default")
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.COMPLETED and state.output == "once"
    assert executions(redis_client, iid, 1) == 1
    _wait(lambda: "this copy is skipped" in pool.log_path.read_text(), what="the copy to be skipped")
