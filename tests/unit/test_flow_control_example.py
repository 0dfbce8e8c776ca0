"""The flow-control example (workers/flow_control.py) and the limits' rules, in the test toolkit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator import WorkflowRuntime
from orchestrator.core.flow import FlowPolicy, priority_list, validate_priority
from orchestrator.testing import WorkflowTestEnvironment
from workers import flow_control


def test_the_example_runs_under_its_limits() -> None:
    with WorkflowTestEnvironment(flow_control.wfr) as env:
        ids = flow_control.start_burst(env.client)
        env.advance(timedelta(minutes=5))  # the rate limit spaces the 20 charges over ~12 s
        for instance_id in ids:
            assert env.state(instance_id).runtime_status.name == "COMPLETED", instance_id
        scopes = {s["scope"]: s for s in env.client.flow_control_status()}
        assert scopes["w:fulfil_order"]["running"] == 0 and scopes["w:fulfil_order"]["waiting"] == 0


def test_waiting_runs_are_pending_with_their_reason_and_start_as_slots_free() -> None:
    wfr = WorkflowRuntime()

    @wfr.workflow(name="slow", concurrency_key=lambda x: x["k"], key_concurrency=1)
    def slow(ctx, x):  # type: ignore[no-untyped-def]
        yield ctx.create_timer(timedelta(seconds=10))
        return x["n"]

    with WorkflowTestEnvironment(wfr) as env:
        first = env.start("slow", input={"k": "a", "n": 1})
        second = env.start("slow", input={"k": "a", "n": 2})
        other = env.start("slow", input={"k": "b", "n": 3})
        assert env.state(first).runtime_status.name == "RUNNING"
        assert env.state(other).runtime_status.name == "RUNNING"  # another key is not held up
        waiting = env.client.store.get_meta(second)
        assert waiting.status == "PENDING" and "key 'a'" in (waiting.flow_wait or "")
        env.client.terminate_workflow(first)  # a finished run frees its slot at once
        assert env.state(second).runtime_status.name == "RUNNING"
        assert env.run_until_complete(second).output == 2


def test_policy_rules_name_the_problem() -> None:
    with pytest.raises(ValueError, match="key_concurrency needs a concurrency_key"):
        FlowPolicy(key_concurrency=2)
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        FlowPolicy(concurrency=0)
    with pytest.raises(ValueError, match="from 0 .first. to 9 .last."):
        validate_priority(10)
    assert priority_list("orchestrator.default", 0) == "orchestrator.default"
    assert priority_list("orchestrator.default", 7) == "orchestrator.default\x06\x167"


def test_a_queued_run_suspended_and_resumed_still_waits_for_its_slot() -> None:
    wfr = WorkflowRuntime()

    @wfr.workflow(name="one_at_a_time", concurrency=1)
    def one_at_a_time(ctx, n):  # type: ignore[no-untyped-def]
        yield ctx.create_timer(timedelta(seconds=10))
        return n

    with WorkflowTestEnvironment(wfr) as env:
        first = env.start("one_at_a_time", input=1)
        queued = env.start("one_at_a_time", input=2)
        env.client.pause_workflow(queued)
        env.client.resume_workflow(queued)
        # Its code has not run (no timer yet): it still waits for the slot, suspended or not.
        assert not [e for e in env.history(queued) if e["kind"] == "TimerCreated"]
        assert env.state(first).runtime_status.name == "RUNNING"
        assert env.run_until_complete(first).output == 1
        assert env.run_until_complete(queued).output == 2
