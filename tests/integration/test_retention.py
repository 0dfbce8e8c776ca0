"""Retention: finished instances are purged in the background after their workflow's retention,
with their children, exported first when asked; set per workflow through the client."""

from __future__ import annotations

import json

import pytest

from orchestrator import WorkflowStatus
from tests.support.waiting import wait_until

APP = "tests.apps.lifecycle_app"


def test_finished_instances_are_purged_after_their_retention_with_children_exported_first(
        client, start_pool, tmp_path, redis_client):
    exports = tmp_path / "exports"
    client.set_workflow_retention("three_children", 1)  # this test's: one second
    client.set_workflow_retention("doubler", 0)  # kept forever
    assert client.workflow_retention("three_children") == 1 and client.workflow_retention("doubler") == 0
    assert client.workflow_retention("ticker") == 7 * 24 * 3600  # the default
    start_pool(APP, env={"ORCH_RETENTION_EXPORT_DIR": str(exports)})
    parent = client.schedule_new_workflow("three_children", input=[1, 2, 3])
    kept = client.schedule_new_workflow("doubler", input=5)
    for instance_id in (parent, kept):
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
        assert state.runtime_status == WorkflowStatus.COMPLETED
    children = client.store.child_ids(parent)
    assert len(children) == 3
    wait_until(lambda: client.get_workflow_state(parent) is None, timeout=60, what="the purge")
    assert all(client.get_workflow_state(c) is None for c in children)  # the doubler children went with it
    assert client.get_workflow_state(kept).runtime_status == WorkflowStatus.COMPLETED
    assert sorted(p.stem for p in exports.glob("*.json")) == sorted([parent, *children])
    doc = json.loads((exports / f"{parent}.json").read_text())
    assert doc["format"] == "orchestrator.history" and doc["instance"]["instance_id"] == parent
    assert any(e["kind"] == "ExecutionCompleted" for e in doc["events"])
    keys = client.store.keys
    leftover = [k for shard in keys.shards() for k in redis_client.zrange(shard.expire, 0, -1)]
    assert leftover == []  # nothing left to purge; the kept instance was never entered


def test_bad_retention_values_are_refused(client):
    with pytest.raises(ValueError, match="retention must be 0"):
        client.set_workflow_retention("x", -1)
    with pytest.raises(ValueError, match="workflow name"):
        client.set_workflow_retention("", 5)
