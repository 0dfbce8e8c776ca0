"""Issue 19, class 1: results belong to their run. A late result of a terminated or replaced run never
resolves a call of a newer run with the same instance id (DESIGN §8).

A real pool with the engine's default settings; ``hard_gate`` holds the old run's activity in flight
while the test terminates and replaces its instance, then lets it finish late.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from orchestrator import WorkflowStatus
from tests.support.defaults import default_stack
from tests.support.store_keys import KEYS, key
from tests.support.waiting import finish, wait_until

APP = "tests.apps.hardening_app"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with default_stack(tmp_path_factory.mktemp("run_isolation"), concurrency=3) as running:
        yield running


def started(stack: SimpleNamespace, gate: str) -> None:
    wait_until(lambda: stack.redis.get(f"hard:started:{gate}"), what=f"activity behind gate {gate!r} to start")


def open_gate(stack: SimpleNamespace, gate: str) -> None:
    stack.redis.set(f"hard:open:{gate}", 1)


def others_run_on(stack: SimpleNamespace) -> None:
    """Another instance runs to completion on the same pool, which is still alive."""
    iid = stack.client.schedule_new_workflow("hard_ok", input={"other": True})
    assert finish(stack.client, iid).output == {"other": True}
    assert stack.pool.proc.poll() is None, stack.pool.log_tail()


def test_a_replaced_runs_late_activity_result_is_dropped_not_given_to_the_new_run(stack):
    c = stack.client
    iid = c.schedule_new_workflow("hard_gated", input={"gate": "old-run", "value": "from the old run"},
                                  instance_id="replaced-1")
    started(stack, "old-run")
    old_run = c.store.get_meta(iid).run
    c.terminate_workflow(iid)
    finish(c, iid, WorkflowStatus.TERMINATED)
    c.schedule_new_workflow("hard_gated", input={"gate": "new-run", "value": "from the new run"},
                            instance_id=iid, reuse_id_policy="replace")
    started(stack, "new-run")
    new_meta = c.store.get_meta(iid)
    assert new_meta.run != old_run and new_meta.status == "RUNNING"
    # Both runs' call #1 is in flight; the old one finishes first, late.
    open_gate(stack, "old-run")
    wait_until(lambda: f"dropped the result of activity hard_gate (task {old_run}.0.1, attempt 1) of {iid}"
               in stack.pool.log_path.read_text(), what="the old run's result to be dropped")
    state = c.get_workflow_state(iid)
    assert state.runtime_status == WorkflowStatus.RUNNING and state.output is None
    open_gate(stack, "new-run")
    assert finish(c, iid).output == "from the new run"
    history = c.get_workflow_history(iid)
    assert [e["result"] for e in history if e["kind"] == "TaskCompleted"] == ["from the new run"]
    others_run_on(stack)


def test_the_old_runs_child_cannot_resolve_the_replaced_parents_call(stack):
    c = stack.client
    parent = c.schedule_new_workflow("hard_parent", input={"child": True}, instance_id="replaced-parent")
    child = f"{parent}:1"
    wait_until(lambda: (s := c.get_workflow_state(child)) and s.runtime_status == WorkflowStatus.RUNNING,
               what="the old run's child to run")
    c.terminate_workflow(parent, recursive=False)  # the child runs on
    finish(c, parent, WorkflowStatus.TERMINATED)
    # The new run's call #1 is an activity: the same call number the old run's child answers.
    c.schedule_new_workflow("hard_parent", input={"gate": "parent-2", "value": "the new run's own"},
                            instance_id=parent, reuse_id_policy="replace")
    started(stack, "parent-2")
    c.raise_workflow_event(child, "go", data="the old run's child")
    assert finish(c, child).output == "the old run's child"
    wait_until(lambda: f"dropped the outcome of a child for call {c.store.get_meta(child).parent_key} of {parent}"
               in stack.pool.log_path.read_text(), what="the old child's outcome to be dropped")
    assert c.get_workflow_state(parent).runtime_status == WorkflowStatus.RUNNING
    open_gate(stack, "parent-2")
    assert finish(c, parent).output == "the new run's own"
    others_run_on(stack)


def test_every_task_key_and_token_of_a_run_carries_its_run_id(stack):
    c = stack.client
    iid = c.schedule_new_workflow("hard_gated", input={"gate": "keys", "value": 1}, instance_id="keyed-1")
    started(stack, "keys")
    run = c.store.get_meta(iid).run
    assert len(run) == 12
    tasks = {k.decode() for k in stack.redis.hkeys(key(iid, "tasks"))}
    # A wait of one token is held in the meta hash (commit.lua), a wider one in the wait set.
    waits = {t.decode() for t in stack.redis.smembers(key(iid, "wait"))} | {stack.redis.hget(key(iid, "meta"), "wtok").decode()}
    assert tasks == {f"{run}.0.1"} and waits == {f"t:{run}.0.1"}
    # The running attempt is claimed for its process (eagerly under the start's step message, it is
    # in no activity index).
    claimed = stack.redis.hget(KEYS.shard_of(iid).claims, f"{iid}|{run}.0.1")
    assert claimed is not None
    open_gate(stack, "keys")
    assert finish(c, iid).output == 1
