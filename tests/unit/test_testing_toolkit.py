"""orchestrator.testing.WorkflowTestEnvironment: the real engine in-process, no external process.

The seed's order-approval workflow (workers/order_approval.py) runs its three paths here, with its
seven-day timer skipped by moving the environment's clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import timedelta

import pytest

from orchestrator import RetryPolicy, WorkflowRuntime, when_all
from orchestrator.core.history import event_from_dict
from orchestrator.core.rerun import plan_rerun
from orchestrator.testing import WorkflowTestEnvironment
from workers.order_approval import request_escalation_workflow
from workers.order_approval import wfr as approval_wfr

DAY_MS = 86_400_000


@pytest.fixture
def no_processes(monkeypatch):
    """Any attempt to start a process (a redis-server, a Celery worker) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the test environment tried to start a process: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)


def test_seed_order_approval_three_paths_in_under_five_seconds_without_a_process(no_processes):
    began = time.perf_counter()
    with WorkflowTestEnvironment(approval_wfr) as env:
        # 1. Under $1000: approved automatically (the seed takes its input as a JSON string).
        small = env.start(request_escalation_workflow, input=json.dumps({"amount": 500}), instance_id="small")
        assert env.state(small).runtime_status.name == "COMPLETED"
        assert [(c["activity"], c["input"]) for c in env.activity_calls(small)] == [("auto_approve", {"amount": 500})]

        # 2. $1000+: waits for a human; the approval's data reaches process_approval.
        big = env.start(request_escalation_workflow, input={"amount": 5000}, instance_id="big")
        [timer] = env.pending_timers(big)
        assert env.state(big).runtime_status.name == "RUNNING" and env.activity_calls(big) == []
        env.raise_event(big, "human_approval", {"approved": True, "approver": "alice"})
        assert env.state(big).runtime_status.name == "COMPLETED"
        assert env.activity_calls(big)[0]["input"] == {"approved": True, "approver": "alice"}

        # 3. Nobody approves within 7 days: six days change nothing, the seventh fires the timer.
        late = env.start(request_escalation_workflow, input={"amount": 5000}, instance_id="late")
        assert env.advance(timedelta(days=6)) == 0 and env.state(late).runtime_status.name == "RUNNING"
        assert env.advance(timedelta(days=1, seconds=1)) == 1
        assert env.state(late).runtime_status.name == "COMPLETED"
        assert [c["activity"] for c in env.activity_calls(late)] == ["handle_timeout"]
        [created] = [e for e in env.history(late) if e["kind"] == "TimerCreated"]
        [fired] = [e for e in env.history(late) if e["kind"] == "TimerFired"]
        assert fired["ts"] - created["ts"] >= 7 * DAY_MS  # the workflow saw seven days pass
    assert time.perf_counter() - began < 5


def test_time_skipping_moves_the_workflow_clock_and_runs_retry_backoffs(no_processes):
    wfr = WorkflowRuntime()
    calls = []

    @wfr.activity(name="flaky")
    def flaky(ctx, _):
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return "ok"

    @wfr.workflow(name="month")
    def month(ctx, _):
        began = ctx.current_utc_datetime
        yield ctx.create_timer(timedelta(days=30))
        result = yield ctx.call_activity(flaky, retry_policy=RetryPolicy(
            first_retry_interval=timedelta(hours=1), max_number_of_attempts=5))
        return {"waited_days": (ctx.current_utc_datetime - began).days, "result": result}

    with WorkflowTestEnvironment(wfr) as env:
        instance_id = env.start("month")
        state = env.run_until_complete(instance_id)
    assert state.output == {"waited_days": 30, "result": "ok"}  # 30 days + two 1 h backoffs
    assert calls == [1, 2, 3]


def test_mock_activity_and_a_deep_chain_with_children(no_processes):
    wfr = WorkflowRuntime()

    @wfr.activity(name="charge")
    def charge(ctx, amount):
        raise AssertionError("the real payment provider must not be called in tests")

    @wfr.workflow(name="child")
    def child(ctx, n):
        return (yield ctx.call_activity(charge, input=n))

    @wfr.workflow(name="parent")
    def parent(ctx, n):
        total = 0
        for i in range(n):
            total += yield ctx.call_activity(charge, input=i)
        children = yield when_all([ctx.call_child_workflow(child, input=i) for i in range(3)])
        return {"total": total, "children": children}

    with WorkflowTestEnvironment(wfr) as env:
        env.mock_activity(charge, lambda ctx, amount: amount * 2)
        instance_id = env.start(parent, input=300)
        assert env.state(instance_id).output == {"total": 2 * sum(range(300)), "children": [0, 2, 4]}
        assert env.client.list_workflows(parent_instance_id=instance_id, limit=10)
    assert wfr.registry.activities["charge"] is charge.__wrapped__  # the runtime under test is unchanged


def test_an_unregistered_version_stalls_until_a_pool_has_it(no_processes):
    wfr = WorkflowRuntime()
    wfr.register_workflow(lambda ctx, _: "v2", name="flow", version="2")
    with WorkflowTestEnvironment(wfr) as env:
        assert env.state(env.start("flow")).output == "v2"
        stuck = env.start("flow", version="1")
        assert env.state(stuck).runtime_status.name == "STALLED"  # Dapr's: no pool has its version
        [(kind, payload, app, why)] = env.publisher.stalled
        assert (kind, payload) == ("step", stuck)
        assert "runs version '1', which is not registered in app 'default' (registered: '2')" in why


def test_rerun_of_the_seed_workflow_reuses_the_recorded_event_and_timer(no_processes):
    with WorkflowTestEnvironment(approval_wfr) as env:
        approved = env.start(request_escalation_workflow, input={"amount": 5000}, instance_id="approved")
        env.raise_event(approved, "human_approval", {"approver": "bob"})
        # The 7-day timer the original never fired is armed again, at its recorded time.
        [timer] = plan_rerun([event_from_dict(e) for e in env.history(approved)], 1).timers
        assert timer.fire_at - timer.ts == 7 * DAY_MS
        again = env.client.rerun_workflow(approved, from_step=1, new_instance_id="approved-again")
        state = env.state(again)
        assert state.runtime_status.name == "COMPLETED" and state.rerun_of == "approved"
        assert env.activity_calls(again)[0]["input"] == {"approver": "bob"}  # the event was carried over
        assert env.pending_timers(again) == []  # finished: its re-armed timer went with it

        late = env.start(request_escalation_workflow, input={"amount": 5000}, instance_id="timed-out")
        env.advance(timedelta(days=7, seconds=1))
        rerun = env.client.rerun_workflow(late, from_step=1)
        # The recorded firing is reused: no second seven-day wait (the clock did not move).
        assert env.state(rerun).runtime_status.name == "COMPLETED"
        assert [c["activity"] for c in env.activity_calls(rerun)] == ["handle_timeout"]
