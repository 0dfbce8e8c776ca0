"""store/pool_names.py: pools of one app id registering different names, described (pure)."""

from __future__ import annotations

from orchestrator.store.liveness import ProcessInfo
from orchestrator.store.pool_names import join_warning, listing, mismatches, workflow_names


def proc(pid: str, app: str = "default", kind: str = "pool", heartbeat: int = 1_000, workflows=None,
         activities=()) -> ProcessInfo:
    return ProcessInfo(pid, app, heartbeat, host="h", pid=int(pid[1:]), kind=kind,
                       workflows=dict(workflows or {}), activities=list(activities))


def test_workflows_compare_by_name_and_version():
    assert workflow_names({"a": [""], "b": ["1", "2"], "c": []}) == {"a", "b@1", "b@2", "c"}


def test_each_pool_is_told_what_the_app_s_other_pools_register_and_it_lacks():
    found = [proc("p1", workflows={"chain": [""], "order": ["1", "2"]}, activities=["add"]),
             proc("p2", workflows={"order": ["1"]}, activities=["add", "echo"]),
             proc("p3", workflows={"order": ["1"]}, activities=["add", "echo"], kind="worker"),  # a child: ignored
             proc("p4", app="rel", workflows={"x": [""]}), proc("p5", app="rel", workflows={"x": [""]})]
    [m] = mismatches(found)
    assert m["app_id"] == "default"
    assert m["lacking"] == [
        {"process_id": "p1", "host": "h", "pid": 1, "workflows": [], "activities": ["echo"]},
        {"process_id": "p2", "host": "h", "pid": 2, "workflows": ["chain", "order@2"], "activities": []}]
    assert m["message"].startswith("the pools (2) of app 'default' register different names: "
                                   "process p1 (h pid 1) lacks the activities ['echo']; "
                                   "process p2 (h pid 2) lacks the workflows ['chain', 'order@2']. ")


def test_alike_pools_and_a_lone_pool_have_no_mismatch():
    assert mismatches([proc("p1", activities=["a"]), proc("p2", activities=["a"])]) == []
    assert mismatches([proc("p1", activities=["a"])]) == []


def test_the_listing_counts_only_live_processes_for_mismatches():
    found = [proc("p1", heartbeat=10_000, activities=["a"]), proc("p2", heartbeat=1, activities=["b"])]
    out = listing(found, now=10_000, expiry_ms=5_000)
    assert [p["alive"] for p in out["items"]] == [True, False] and out["mismatches"] == []


def test_a_joining_pool_s_warning_names_both_sides():
    peers = [proc("p1", workflows={"chain": [""]}, activities=["add"]), proc("p9", kind="worker")]
    message = join_warning("default", ({"rel_one"}, {"add"}), peers)
    assert message is not None and message.startswith(
        "this pool joins app 'default', whose other pools (1) register a different set of names: "
        "this pool lacks the workflows ['chain']; they lack the workflows ['rel_one']. ")
    assert join_warning("default", ({"chain"}, {"add"}), peers) is None
    assert join_warning("default", ({"chain"}, set()), [proc("p9", kind="worker")]) is None
