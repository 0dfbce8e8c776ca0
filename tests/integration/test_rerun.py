"""Rerun from a step: fix a bug, deploy, rerun the failed instance from the step that failed.

Real redis-server and pools (tests/apps/versioned_app.py: deploy 1 fails step 3 of ``five_steps``,
deploy 2 fixes it). Every execution of an activity is counted in Redis, so the tests see exactly
which steps ran again.
"""

from __future__ import annotations

import pytest

from orchestrator import InstanceAlreadyExistsError, InstanceNotFoundError, InstanceRunningError, WorkflowStatus
from orchestrator.core.rerun import RerunError
from tests.support.store_keys import index_total, key, score

APP = "tests.apps.versioned_app"


def runs(redis_client):
    return {k.decode(): int(v) for k, v in redis_client.hgetall("versioned:runs").items()}


def finished(client, instance_id, status=WorkflowStatus.COMPLETED):
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
    assert state.runtime_status == status, (state.runtime_status, state.failure_details)
    return state


def steps(history):
    """History split into orchestration steps (each led by StepStarted)."""
    out = []
    for event in history:
        if event["kind"] == "StepStarted":
            out.append([])
        out[-1].append(event)
    return out


def test_rerun_from_step_3_of_a_failed_five_step_workflow_runs_only_steps_3_to_5(client, start_pool, redis_client):
    pool = start_pool(APP, env={"VERSIONED_APP_CODE": "1"})
    client.schedule_new_workflow("five_steps", input={"base": 0}, instance_id="orig")
    failed = finished(client, "orig", WorkflowStatus.FAILED)
    assert failed.failure_details.error_type == "KeyError"
    assert runs(redis_client) == {"work1": 1, "work2": 1, "work3": 1}
    original_history = client.get_workflow_history("orig")
    pool.stop()

    start_pool(APP, env={"VERSIONED_APP_CODE": "2"})  # the fix
    rerun = client.rerun_workflow("orig", from_step=3, new_instance_id="orig-rerun")
    assert rerun == "orig-rerun"
    state = finished(client, rerun)
    assert state.output == [1, 2, 3, 4, 5]
    assert state.rerun_of == "orig" and state.input == {"base": 0}
    assert runs(redis_client) == {"work1": 1, "work2": 1, "work3": 2, "work4": 1, "work5": 1}

    history = client.get_workflow_history(rerun)
    # The original's first two orchestration steps are the rerun's history, as recorded...
    assert steps(history)[:2] == steps(original_history)[:2]
    # ...then call 3 onwards were scheduled anew, with the sequence numbers replay expects.
    assert [(e["seq"], e["input"]["n"]) for e in history if e["kind"] == "TaskScheduled"] == [
        (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    assert client.get_workflow_history("orig") == original_history  # the original is untouched
    assert client.get_workflow_state("orig").runtime_status == WorkflowStatus.FAILED

    # A rerun of the rerun with a new input: call 1's recorded result stays, calls 2..5 see the input.
    again = client.rerun_workflow(rerun, from_step=2, input={"base": 100})
    assert finished(client, again).output == [1, 102, 103, 104, 105]
    assert client.get_workflow_state(again).rerun_of == rerun
    assert runs(redis_client) == {"work1": 1, "work2": 2, "work3": 3, "work4": 2, "work5": 2}


def test_rerun_refuses_what_it_cannot_do_and_says_why(client, start_pool):
    start_pool(APP, env={"VERSIONED_APP_CODE": "2"})
    client.schedule_new_workflow("order", input={"id": "busy"}, instance_id="busy")  # waits for "pay"
    client.wait_for_workflow_start("busy", timeout_in_seconds=20)
    with pytest.raises(InstanceRunningError, match="'busy' is RUNNING; only a finished instance"):
        client.rerun_workflow("busy", from_step=1)
    with pytest.raises(InstanceNotFoundError, match="ghost"):
        client.rerun_workflow("ghost", from_step=1)
    client.schedule_new_workflow("five_steps", input={"base": 0}, instance_id="done")
    finished(client, "done")
    with pytest.raises(RerunError, match="between 1 and 5 .* got 6"):
        client.rerun_workflow("done", from_step=6)
    with pytest.raises(TypeError, match="from_step must be an int"):
        client.rerun_workflow("done", from_step="3")
    with pytest.raises(InstanceAlreadyExistsError, match="'busy'"):
        client.rerun_workflow("done", from_step=1, new_instance_id="busy")


def test_a_rerun_is_created_holding_its_history_inbox_and_first_step(client, start_pool, redis_client):
    """With no pool running, what the store holds for the rerun is what creating it wrote (one CREATE
    script with a seed): RUNNING at version 1 with the reused history, its first step's inbox and
    that step's message queued, not a PENDING instance waiting for more writes."""
    pool = start_pool(APP, env={"VERSIONED_APP_CODE": "1"})
    client.schedule_new_workflow("five_steps", input={"base": 0}, instance_id="one-write")
    finished(client, "one-write", WorkflowStatus.FAILED)
    pool.kill()
    redis_client.delete("orchestrator.default")  # whatever the finished pool left queued

    rerun = client.rerun_workflow("one-write", from_step=3, new_instance_id="one-write-2")
    meta = client.store.get_meta(rerun)
    assert (meta.status, meta.version, meta.rerun_of) == ("RUNNING", 1, "one-write")
    assert steps(client.get_workflow_history(rerun)) == steps(client.get_workflow_history("one-write"))[:2]
    inbox = redis_client.xrange(key(rerun, "inbox"))
    assert [fields[b"t"] for _, fields in inbox] == [b"x"]  # the result of call 2, for the first step
    assert score(redis_client, "ready", rerun) is not None and redis_client.llen("orchestrator.default") == 1
    assert index_total(redis_client, "PENDING") == 0

    start_pool(APP, env={"VERSIONED_APP_CODE": "2"})
    assert finished(client, rerun).output == [1, 2, 3, 4, 5]


# -- the plan, on recorded histories (pure: no store) --------------------------------------------
T0 = 1_700_000_000_000


def record(workflow, deliveries):
    """The history the engine records for ``workflow`` given one inbox event per step."""
    from orchestrator.core.history import ExecutionStarted, StepStarted
    from orchestrator.core.replay import replay

    history = []
    for n, events in enumerate([[ExecutionStarted(ts=T0, name="wf", input=7)], *([e] for e in deliveries)]):
        new = [StepStarted(ts=T0 + n), *events]
        result = replay(workflow, "orig", history, new)
        history += new + result.actions + ([result.completion] if result.completion else [])
    return history


def test_plan_counts_calls_folds_retries_and_keeps_whole_steps():
    from datetime import timedelta

    from orchestrator import RetryPolicy, when_all
    from orchestrator.core.errors import FailureDetails
    from orchestrator.core.history import ExecutionStarted, TaskCompleted, TaskFailed, TimerFired
    from orchestrator.core.rerun import calls, plan_rerun

    def fan(ctx, n):
        yield when_all([ctx.call_activity("a", input=i) for i in range(3)])
        yield ctx.call_activity("b", retry_policy=RetryPolicy(first_retry_interval=timedelta(seconds=1),
                                                               max_number_of_attempts=3))
        return (yield ctx.call_activity("c", timeout=timedelta(minutes=5)))

    boom = FailureDetails("x", "ValueError")
    history = record(fan, [TaskCompleted(ts=T0, seq=1), TaskCompleted(ts=T0, seq=2), TaskCompleted(ts=T0, seq=3),
                           TaskFailed(ts=T0, seq=4, failure=boom), TimerFired(ts=T0, seq=5),
                           TaskCompleted(ts=T0, seq=6), TaskCompleted(ts=T0, seq=7, result="done")])
    assert [(c.number, c.seq, c.name) for c in calls(history)] == [(1, 1, "a"), (2, 2, "a"), (3, 3, "a"),
                                                                   (4, 4, "b"), (5, 7, "c")]
    # Call 2 was scheduled in the same step as call 1 (a fan-out): that whole step runs again.
    fan_plan = plan_rerun(history, 2, input=8)
    assert fan_plan.history == [] and fan_plan.reused == []
    assert fan_plan.inbox == [ExecutionStarted(ts=T0, name="wf", input=8)]
    # Call 5 ("c", after "b" was retried once): calls 1-4 and the retry are reused as recorded;
    # its timeout timer (seq 8) is not, and nothing is left to re-arm.
    late = plan_rerun(history, 5)
    assert [c.number for c in late.reused] == [1, 2, 3, 4] and late.call.name == "c"
    assert late.inbox == [TaskCompleted(ts=T0, seq=6)] and late.timers == []
    assert late.started.input == 7


def test_plan_refuses_a_call_before_the_cut_that_never_finished():
    from orchestrator.core.history import ExecutionTerminated, TaskCompleted
    from orchestrator.core.rerun import RerunError, plan_rerun

    def overlap(ctx, _):
        slow = ctx.call_activity("slow")
        yield ctx.call_activity("fast")
        yield ctx.call_activity("next")
        return (yield slow)

    history = record(overlap, [TaskCompleted(ts=T0, seq=2), ExecutionTerminated(ts=T0)])
    with pytest.raises(RerunError, match=r"call #1 \(activity 'slow'\).*never finished.*rerun from step 1"):
        plan_rerun(history, 3)
    assert plan_rerun(history, 1).history == []
