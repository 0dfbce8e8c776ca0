"""Changing workflow code under running instances: patches, named versions, diagnostics, export.

Real redis-server, real worker pools. A deploy is a pool restarted with another
``VERSIONED_APP_CODE`` (tests/apps/versioned_app.py); in-flight instances wait for an event across it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from orchestrator import WorkflowStatus
from orchestrator.testing import Replayer, assert_replays
from tests.apps.versioned_app import build

APP = "tests.apps.versioned_app"


def completed(client, instance_id, timeout=30):
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
    assert state.runtime_status == WorkflowStatus.COMPLETED, (state.runtime_status, state.failure_details)
    return state


def consumed(client, instance_id, activity, timeout=20):
    """Until the step that consumed ``activity``'s result committed (the workflow now waits for its event)."""
    deadline = time.monotonic() + timeout
    while True:
        history = client.get_workflow_history(instance_id)
        seqs = {e["seq"] for e in history if e["kind"] == "TaskScheduled" and e["name"] == activity}
        if any(e["kind"] == "TaskCompleted" and e["seq"] in seqs for e in history):
            return history
        assert time.monotonic() < deadline, f"{instance_id} never consumed {activity}: {history}"
        time.sleep(0.05)


def runs(redis_client):
    return {k.decode(): int(v) for k, v in redis_client.hgetall("versioned:runs").items()}


def test_v1_instances_keep_their_path_after_a_restart_with_patched_and_versioned_v2(client, start_pool, redis_client):
    pool = start_pool(APP, env={"VERSIONED_APP_CODE": "1"})
    client.schedule_new_workflow("order", input={"id": "old"}, instance_id="old")
    client.schedule_new_workflow("order_flow", input={"id": "flow-old"}, instance_id="flow-old")
    before = consumed(client, "old", "reserve")
    consumed(client, "flow-old", "quote")
    assert client.get_workflow_state("flow-old").workflow_version == "1"
    pool.stop()

    start_pool(APP, env={"VERSIONED_APP_CODE": "2"})  # the deploy: is_patched + order_flow version 2
    client.raise_workflow_event("old", "pay", data={"paid": 10})
    client.raise_workflow_event("flow-old", "go")
    assert completed(client, "old").output == ["reserve", "ship"]  # the old path: no fraud check
    old_history = client.get_workflow_history("old")
    assert old_history[:len(before)] == before  # replay accepted what v1 recorded
    assert not [e for e in old_history if e["kind"] == "PatchMarker"]

    client.schedule_new_workflow("order", input={"id": "new"}, instance_id="new")
    consumed(client, "new", "reserve")
    client.raise_workflow_event("new", "pay", data={"paid": 20})
    assert completed(client, "new").output == ["check_fraud", "reserve", "ship"]  # the patched path
    new_history = client.get_workflow_history("new")
    [marker] = [e for e in new_history if e["kind"] == "PatchMarker"]
    assert (marker["name"], marker["position"]) == ("fraud-check", 0)
    assert [(e["seq"], e["name"]) for e in new_history if e["kind"] == "TaskScheduled"] == [
        (1, "check_fraud"), (2, "reserve"), (3, "ship")]  # the marker took no sequence number

    # Named versions: the running v1 instance kept version 1; a new one takes the latest (2);
    # a start may still ask for version 1 explicitly.
    client.schedule_new_workflow("order_flow", input={"id": "flow-new"}, instance_id="flow-new")
    client.schedule_new_workflow("order_flow", input={"id": "flow-pinned"}, instance_id="flow-pinned", version="1")
    consumed(client, "flow-pinned", "quote")
    for instance_id in ("flow-new", "flow-pinned"):
        client.raise_workflow_event(instance_id, "go")
    assert completed(client, "flow-old").output == {"version": "1", "steps": ["quote", "book"]}
    assert completed(client, "flow-new").output == {"version": "2", "steps": ["book_express"]}
    assert completed(client, "flow-pinned").output == {"version": "1", "steps": ["quote", "book"]}
    assert [client.get_workflow_state(i).workflow_version for i in ("flow-old", "flow-new", "flow-pinned")] == \
        ["1", "2", "1"]
    [started] = [e for e in client.get_workflow_history("flow-new") if e["kind"] == "ExecutionStarted"]
    assert started["version"] == "2"
    assert runs(redis_client) == {"reserve": 2, "ship": 2, "check_fraud": 1, "quote": 2, "book": 2,
                                  "book_express": 1}


def test_unguarded_change_fails_with_a_diagnostic_that_names_step_calls_and_patching(client, start_pool):
    pool = start_pool(APP, env={"VERSIONED_APP_CODE": "1"})
    client.schedule_new_workflow("order", input={"id": "careless"}, instance_id="careless")
    before = consumed(client, "careless", "reserve")
    pool.stop()
    start_pool(APP, env={"VERSIONED_APP_CODE": "2-unguarded"})
    client.raise_workflow_event("careless", "pay")
    state = client.wait_for_workflow_completion("careless", timeout_in_seconds=30)
    assert state.runtime_status == WorkflowStatus.FAILED
    failure = state.failure_details
    assert failure.error_type == "NonDeterminismError"
    for part in ("workflow 'order'", "instance 'careless'", "at step 1 (history event #3)",
                 "history recorded activity 'reserve' (call #1)", "asked for activity 'check_fraud' (call #1)",
                 "ctx.is_patched"):
        assert part in failure.message, (part, failure.message)
    assert client.get_workflow_history("careless") == before  # nothing written


def test_cli_export_replays_offline_against_each_deploy(client, start_pool, redis_server, tmp_path):
    start_pool(APP, env={"VERSIONED_APP_CODE": "2"})
    client.schedule_new_workflow("order", input={"id": "exp"}, instance_id="exp")
    consumed(client, "exp", "reserve")
    client.raise_workflow_event("exp", "pay")
    completed(client, "exp")
    target = tmp_path / "histories" / "exp.json"
    target.parent.mkdir()
    env = {**os.environ, "REDIS_URL": redis_server.url}
    done = subprocess.run([sys.executable, "-m", "orchestrator", "history", "exp", "--export", str(target), "--json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"instance_id": "exp", "exported": str(target),
                                       "events": len(client.get_workflow_history("exp"))}
    doc = json.loads(target.read_text())
    assert doc["format"] == "orchestrator.history" and doc["format_version"] == 1
    assert doc["instance"]["runtime_status"] == "COMPLETED" and doc["events"] == client.get_workflow_history("exp")

    assert_replays(target.parent, workflows=build("2"))  # unchanged code: passes
    assert_replays(target.parent, workflows=build("2-unguarded"))  # the guard removed (patch retired): marker ignored
    [result] = Replayer(build("1")).replay_all(target.parent).results  # rolled back below the patch
    assert result.problem == "nondeterminism" and result.step == 1
    assert (result.recorded, result.requested) == ("activity 'check_fraud' (call #1)", "asked for activity 'reserve' (call #1)")
