"""Child workflows, continue-as-new and the instance lifecycle (terminate, pause/resume, purge, id
reuse), on a real redis-server with real worker pool processes."""

from __future__ import annotations

import json
import time
from datetime import UTC

import pytest

from orchestrator import (
    InstanceAlreadyExistsError,
    InstanceFinishedError,
    InstanceNotFoundError,
    InstanceRunningError,
    WorkflowStatus,
)
from tests.support.store_keys import score, shard_total
from tests.support.waiting import finish, wait_until

APP = "tests.apps.lifecycle_app"
FINISHED = {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED}


def counter(redis_client, name):
    return int(redis_client.get(f"test:{name}") or 0)


def leftovers(redis_client, needle):
    """Every key whose name, or whose set/zset member or hash field, mentions ``needle``."""
    found = []
    raw = needle.encode()
    for key in redis_client.scan_iter(count=1000):
        if raw in key:
            found.append(key.decode())
            continue
        kind = redis_client.type(key)
        if kind == b"zset":
            members = redis_client.zrange(key, 0, -1)
        elif kind == b"set":
            members = redis_client.smembers(key)
        elif kind == b"hash":
            members = redis_client.hkeys(key)
        else:
            continue
        found += [f"{key.decode()} -> {m.decode()}" for m in members if raw in m]
    return found


# -- children ---------------------------------------------------------------------------------------
def test_parent_with_three_children_one_failing(client, start_pool):
    start_pool(APP)
    parent = client.schedule_new_workflow("three_children", input=[1, -2, 3])
    state = finish(client, parent)
    assert state.output == {
        "sum": 8, "ok": [2, 6],
        "failed": [{"input": -2, "error_type": "ValueError",  # the child's failure, chained as Dapr's
                    "message": "Activity task #1 ('double') failed: cannot double a negative number: -2"}],
    }
    kids = [f"{parent}:{seq}" for seq in (1, 2, 3)]  # deterministic default child ids
    statuses = {}
    for kid in kids:
        child = client.get_workflow_state(kid)
        assert child.parent_instance_id == parent and child.name == "doubler"
        statuses[kid] = child.runtime_status
    assert statuses == {kids[0]: WorkflowStatus.COMPLETED, kids[1]: WorkflowStatus.FAILED,
                        kids[2]: WorkflowStatus.COMPLETED}
    assert client.get_workflow_state(kids[1]).failure_details.error_type == "ValueError"
    # Parent -> children: listing by parent, alone and combined with a status filter.
    page = client.query_workflows(parent_instance_id=parent)
    assert sorted(s.instance_id for s in page.items) == kids and page.total == 3
    failed = client.list_workflows(parent_instance_id=parent, status="FAILED")
    assert [s.instance_id for s in failed] == [kids[1]]
    assert client.get_workflow_state(parent).parent_instance_id is None


def test_when_all_over_children_fails_parent_with_the_childs_error(client, start_pool):
    start_pool(APP)
    parent = client.schedule_new_workflow("all_children", input=[4, -1, 5])
    state = finish(client, parent, WorkflowStatus.FAILED)
    assert state.failure_details.error_type == "ValueError"
    assert "negative number: -1" in state.failure_details.message
    ok = client.schedule_new_workflow("all_children", input=[4, 5])
    assert finish(client, ok).output == [8, 10]


def test_child_with_retry_policy_and_explicit_id(client, start_pool):
    start_pool(APP)
    parent = client.schedule_new_workflow("retried_child", input="flaky-key", instance_id="retry-parent")
    assert finish(client, parent).output == "ok"
    first, second = client.get_workflow_state("retry-parent-kid"), client.get_workflow_state("retry-parent-kid-attempt2")
    assert first.runtime_status == WorkflowStatus.FAILED and second.runtime_status == WorkflowStatus.COMPLETED
    assert first.parent_instance_id == second.parent_instance_id == "retry-parent"
    assert {s.instance_id for s in client.list_workflows(parent_instance_id="retry-parent")} == {
        "retry-parent-kid", "retry-parent-kid-attempt2"}


def test_one_explicit_child_id_called_again_runs_again(client, start_pool):
    start_pool(APP)
    parent = client.schedule_new_workflow("same_child_twice", input=25, instance_id="again")
    # 25 -> 50 -> 100 in generation 0; 100 -> 200 -> 400 in generation 1, all with child "again-only".
    assert finish(client, parent).output == [100, 200, 400]
    assert client.get_workflow_state("again-only").output == 400
    assert [s.instance_id for s in client.list_workflows(parent_instance_id=parent)] == ["again-only"]


# -- continue-as-new --------------------------------------------------------------------------------
def test_monitor_continuing_as_new_1000_times_keeps_history_and_memory_flat(client, start_pool, redis_client):
    start_pool(APP, concurrency=2)
    instance_id = client.schedule_new_workflow("looper", input={"n": 0, "limit": 1000}, instance_id="monitor-1")
    samples: dict[str, tuple[int, int]] = {}
    history_sizes = []
    deadline = time.monotonic() + 120
    while True:
        state = client.get_workflow_state(instance_id)
        if state.runtime_status in FINISHED:
            break
        assert time.monotonic() < deadline, "monitor did not finish in time"
        n = (state.custom_status or {}).get("n", 0)
        history_sizes.append(len(client.get_workflow_history(instance_id)))
        for label, at in (("early", 100), ("late", 900)):
            if n >= at and label not in samples:
                samples[label] = (redis_client.info("memory")["used_memory"], redis_client.dbsize())
        time.sleep(0.01)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    assert state.output == {"generations": 1000}
    final_history = client.get_workflow_history(instance_id)
    print(f"\nhistory sizes seen: max {max(history_sizes)} over {len(history_sizes)} samples; "
          f"memory/keys early {samples['early']}, late {samples['late']}")
    assert max(history_sizes + [len(final_history)]) < 50
    assert final_history[1]["kind"] == "ExecutionStarted" and final_history[1]["input"]["n"] == 999
    (mem_early, keys_early), (mem_late, keys_late) = samples["early"], samples["late"]
    assert abs(keys_late - keys_early) <= 5
    assert mem_late - mem_early < 256 * 1024, "Redis memory grew with the number of generations"
    # Nothing of the 999 earlier generations lingers in the global indexes either.
    assert shard_total(redis_client, "timers") == 0 and shard_total(redis_client, "outbox") == 0


@pytest.mark.parametrize("save_events", [True, False])
def test_continue_as_new_carries_unprocessed_events_only_when_asked(client, start_pool, save_events):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("event_carrier", input={"want": 2, "save": save_events})
    client.wait_for_workflow_start(instance_id)
    client.raise_workflow_event(instance_id, "item", data="old-1")
    client.raise_workflow_event(instance_id, "item", data="old-2")
    client.raise_workflow_event(instance_id, "go")
    wait_until(lambda: client.get_workflow_state(instance_id).input.get("gen") == 1, what="generation 1")
    if save_events:
        assert finish(client, instance_id).output == ["old-1", "old-2"]
        return
    time.sleep(0.5)
    assert client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.RUNNING
    client.raise_workflow_event(instance_id, "item", data="new-1")
    client.raise_workflow_event(instance_id, "item", data="new-2")
    assert finish(client, instance_id).output == ["new-1", "new-2"]


def test_monitor_example_sleeps_dynamically_alerts_and_stops_gracefully(client, start_pool):
    import http.server
    import threading

    health = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(health["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start_pool("workers.monitor")
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        instance_id = client.schedule_new_workflow(
            "monitor", input={"url": url, "healthy_every_s": 1.0, "unhealthy_every_s": 0.1}, instance_id="mon")

        def checks():
            return (client.get_workflow_state(instance_id).custom_status or {}).get("checks", 0)

        def sleep_ms():
            """The current generation's sleep, as recorded: the timer's fire time minus its step's time."""
            timers = [e for e in client.get_workflow_history(instance_id) if e["kind"] == "TimerCreated"]
            return timers[0]["fire_at"] - timers[0]["ts"] if timers else None

        wait_until(lambda: checks() >= 1, what="first check")
        began = time.monotonic()
        wait_until(lambda: checks() >= 3, what="third check")
        assert time.monotonic() - began >= 1.0  # healthy: at least one full 1 s sleep between checks
        assert wait_until(sleep_ms, what="a healthy sleep") == 1000
        health["code"] = 503
        status = wait_until(lambda: (lambda c: c if c and not c["healthy"] else None)(
            client.get_workflow_state(instance_id).custom_status), what="unhealthy")
        assert status["alerts"] == 1 and status["next_check_in_s"] == 0.1
        before = checks()
        wait_until(lambda: checks() >= before + 5, what="more checks while unhealthy")
        assert wait_until(sleep_ms, what="an unhealthy sleep") == 100
        assert client.get_workflow_state(instance_id).custom_status["alerts"] == 1  # one alert per outage
        client.raise_workflow_event(instance_id, "stop")
        state = finish(client, instance_id)
        assert state.output["stopped"] is True and state.output["alerts"] == 1
        assert state.output["checks"] >= before + 5
        assert len(client.get_workflow_history(instance_id)) < 50
    finally:
        server.shutdown()


# -- terminate --------------------------------------------------------------------------------------
def test_recursive_terminate_stops_parent_and_children(client, start_pool, redis_client):
    start_pool(APP, concurrency=4)
    parent = client.schedule_new_workflow("ticker_tree", input="tree")
    kids = [f"{parent}:1", f"{parent}:2"]
    wait_until(lambda: counter(redis_client, "tree-fan") >= 4, what="the fan-out under way")
    wait_until(lambda: all(client.get_workflow_state(k) is not None for k in kids), what="children")
    client.terminate_workflow(parent, output={"reason": "test"})
    assert finish(client, parent, WorkflowStatus.TERMINATED).output == {"reason": "test"}
    for kid in kids:
        assert finish(client, kid, WorkflowStatus.TERMINATED).output == {"reason": "test"}
    time.sleep(0.5)  # an activity already running when the instances stopped may still finish
    settled, fanned = counter(redis_client, "tree"), counter(redis_client, "tree-fan")
    time.sleep(1.5)
    assert counter(redis_client, "tree") == settled, "the children's activities kept running"
    # The fan-out's activities still queued at termination were dropped, not run.
    assert counter(redis_client, "tree-fan") == fanned < 30
    with pytest.raises(InstanceFinishedError):
        client.terminate_workflow(parent)


def test_non_recursive_terminate_leaves_children_and_purge_refuses_the_tree(client, start_pool, redis_client):
    start_pool(APP, concurrency=4)
    parent = client.schedule_new_workflow("ticker_tree", input="solo", instance_id="solo-tree")
    kids = ["solo-tree:1", "solo-tree:2"]
    wait_until(lambda: counter(redis_client, "solo") >= 4, what="ticks")
    client.terminate_workflow(parent, recursive=False)
    finish(client, parent, WorkflowStatus.TERMINATED)
    before = counter(redis_client, "solo")
    wait_until(lambda: counter(redis_client, "solo") >= before + 4, what="children ticking on")
    assert all(client.get_workflow_state(k).runtime_status == WorkflowStatus.RUNNING for k in kids)
    with pytest.raises(InstanceRunningError, match="solo-tree:1"):
        client.purge_workflow(parent)
    assert client.get_workflow_state(parent) is not None  # nothing was deleted
    for kid in kids:
        client.terminate_workflow(kid)
        finish(client, kid, WorkflowStatus.TERMINATED)
    client.purge_workflow(parent)
    assert leftovers(redis_client, "solo-tree") == []


# -- pause / resume ---------------------------------------------------------------------------------
def test_pause_stops_progress_and_an_event_raised_while_paused_is_processed_after_resume(
        client, start_pool, redis_client):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("ticker", input={"n": 20, "counter": "pause"})
    wait_until(lambda: counter(redis_client, "pause") >= 2, what="first ticks")
    client.pause_workflow(instance_id)
    wait_until(lambda: client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.SUSPENDED,
               what="SUSPENDED")
    client.raise_workflow_event(instance_id, "finish", data="raised-while-paused")
    time.sleep(0.3)  # the activity in flight when paused may complete; its result waits in the inbox
    ticks, history = counter(redis_client, "pause"), client.get_workflow_history(instance_id)
    time.sleep(1.5)
    assert counter(redis_client, "pause") == ticks < 20, "activities ran while paused"
    assert client.get_workflow_history(instance_id) == history, "the workflow progressed while paused"
    assert client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.SUSPENDED
    client.resume_workflow(instance_id)
    state = finish(client, instance_id)
    assert state.output == {"ticks": 20, "finish": "raised-while-paused"}
    step, step_of = 0, {}
    for event in client.get_workflow_history(instance_id):
        step += event["kind"] == "StepStarted"
        step_of.setdefault(event["kind"], step)
    # Suspended in one step; the event, raised while suspended, is consumed no earlier than the resume.
    assert step_of["ExecutionSuspended"] < step_of["ExecutionResumed"] <= step_of["EventRaised"]
    with pytest.raises(InstanceFinishedError):
        client.pause_workflow(instance_id)


# -- purge ------------------------------------------------------------------------------------------
def test_purge_refuses_a_running_instance_and_removes_every_key_of_a_finished_tree(
        client, start_pool, redis_client):
    start_pool(APP)
    running = client.schedule_new_workflow("ticker", input={"n": 1, "counter": "purge"}, instance_id="still-running")
    client.wait_for_workflow_start(running)
    with pytest.raises(InstanceRunningError, match="still-running"):
        client.purge_workflow(running)
    parent = client.schedule_new_workflow("three_children", input=[1, -2, 3], instance_id="purge-tree")
    finish(client, parent)
    assert len(leftovers(redis_client, "purge-tree")) > 10
    assert client.purge_workflow(parent) is True
    assert leftovers(redis_client, "purge-tree") == []
    for gone in ("purge-tree", "purge-tree:1", "purge-tree:2", "purge-tree:3"):
        assert client.get_workflow_state(gone) is None
    with pytest.raises(InstanceNotFoundError):
        client.purge_workflow(parent)
    assert client.list_workflows(name="three_children") == []
    assert "three_children" not in client.count_workflows()["by_name"]
    # The running instance was not touched by any of this.
    assert client.get_workflow_state(running).runtime_status == WorkflowStatus.RUNNING


def test_terminating_a_scheduled_instance_then_purging_leaves_nothing(client, start_pool, redis_client):
    from datetime import datetime, timedelta

    start_pool(APP)
    later = datetime.now(UTC) + timedelta(hours=1)
    instance_id = client.schedule_new_workflow("doubler", input=1, instance_id="sched-1", start_at=later)
    assert score(redis_client, "timers", "sched-1|start") is not None
    client.terminate_workflow(instance_id)
    assert client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.TERMINATED
    client.purge_workflow(instance_id)
    # The terminate's step message may still be on its way in the pool: the claim it takes is dropped
    # when that step finds the instance gone (worker/steps.py), so nothing is left once it settles.
    deadline = time.monotonic() + 10
    while leftovers(redis_client, "sched-1") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(redis_client, "sched-1") == []


def test_purge_without_recursion_keeps_the_children(client, start_pool, redis_client):
    start_pool(APP)
    parent = client.schedule_new_workflow("all_children", input=[1, 2], instance_id="flat-purge")
    finish(client, parent)
    client.purge_workflow(parent, recursive=False)
    assert client.get_workflow_state(parent) is None
    assert client.get_workflow_state("flat-purge:1").output == 2


# -- instance id reuse ------------------------------------------------------------------------------
def test_instance_id_reuse_policy(client, start_pool):
    start_pool(APP)
    first = client.schedule_new_workflow("doubler", input=2, instance_id="reused")
    assert finish(client, first).output == 4
    with pytest.raises(InstanceAlreadyExistsError, match="reused"):  # setting reuse_finished_ids=False
        client.strict().schedule_new_workflow("doubler", input=3, instance_id="reused")
    with pytest.raises(InstanceAlreadyExistsError):
        client.schedule_new_workflow("doubler", input=3, instance_id="reused", reuse_id_policy="error")
    with pytest.raises(ValueError, match="reuse_id_policy"):
        client.schedule_new_workflow("doubler", input=3, instance_id="reused", reuse_id_policy="overwrite")
    client.schedule_new_workflow("doubler", input=5, instance_id="reused", reuse_id_policy="replace")
    assert finish(client, "reused").output == 10
    started = [e for e in client.get_workflow_history("reused") if e["kind"] == "ExecutionStarted"]
    assert [e["input"] for e in started] == [5]  # the old run's history is gone
    assert [s.instance_id for s in client.list_workflows(name="doubler")] == ["reused"]
    # A running instance is never replaced.
    client.schedule_new_workflow("ticker", input={"n": 0, "counter": "reuse"}, instance_id="busy")
    client.wait_for_workflow_start("busy")
    with pytest.raises(InstanceAlreadyExistsError, match="RUNNING"):
        client.schedule_new_workflow("ticker", input={"n": 0, "counter": "reuse"}, instance_id="busy",
                                     reuse_id_policy="replace")


def test_replacing_a_finished_parent_reruns_its_children(client, start_pool):
    """The new run's children have the same deterministic ids as the old run's finished children:
    they are taken over and run again, not mistaken for the new run's (already finished) children."""
    start_pool(APP)
    client.schedule_new_workflow("echo_children", input=[1, 2], instance_id="tree-reuse")
    assert finish(client, "tree-reuse").output == [2, 4]
    client.schedule_new_workflow("echo_children", input=[3, 4], instance_id="tree-reuse", reuse_id_policy="replace")
    assert finish(client, "tree-reuse").output == [6, 8]
    assert client.get_workflow_state("tree-reuse:1").input == 3


def test_history_is_json_friendly(client, start_pool):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("three_children", input=[1, -2])
    finish(client, instance_id)
    history = client.get_workflow_history(instance_id)
    assert json.loads(json.dumps(history)) == history
    failed = next(e for e in history if e["kind"] == "ChildFailed")
    assert failed["failure"]["error_type"] == "ValueError"
    scheduled = [e for e in history if e["kind"] == "ChildScheduled"]
    assert [e["instance_id"] for e in scheduled] == [f"{instance_id}:1", f"{instance_id}:2"]
    with pytest.raises(InstanceNotFoundError):
        client.get_workflow_history("nope")
