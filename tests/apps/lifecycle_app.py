"""Workflows for the lifecycle tests: children, continue-as-new, terminate, pause, purge, reuse.

Activities count their runs in Redis (``REDIS_URL``) so a test can prove what ran and what did not.
"""

from __future__ import annotations

import time
from datetime import timedelta

from orchestrator import DaprWorkflowContext, TaskFailedError, WorkflowActivityContext, WorkflowRuntime, when_all
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()
counters = app_redis


# -- activities ------------------------------------------------------------------------------------
@wfr.activity(name="double")
def double(ctx: WorkflowActivityContext, n: int) -> int:
    if n < 0:
        raise ValueError(f"cannot double a negative number: {n}")
    return n * 2


@wfr.activity(name="tick")
def tick(ctx: WorkflowActivityContext, counter: str) -> int:
    """Counts one run in Redis; slow enough that a test can act between two ticks."""
    time.sleep(0.05)
    return int(counters().incr(f"test:{counter}"))


@wfr.activity(name="counted_double")
def counted_double(ctx: WorkflowActivityContext, n: int) -> int:
    """Doubles ``n`` and counts the run in ``test:runs:<instance>:<task>``, so a test sees a second run."""
    counters().incr(f"test:runs:{ctx.workflow_id}:{ctx.task_id}")
    return n * 2


@wfr.activity(name="flaky_once")
def flaky_once(ctx: WorkflowActivityContext, key: str) -> str:
    if counters().incr(f"test:{key}") == 1:
        raise RuntimeError("first attempt fails")
    return "ok"


# -- children --------------------------------------------------------------------------------------
@wfr.workflow(name="doubler")
def doubler(ctx: DaprWorkflowContext, n: int):
    return (yield ctx.call_activity(double, input=n))


@wfr.workflow(name="flaky_child")
def flaky_child(ctx: DaprWorkflowContext, key: str):
    return (yield ctx.call_activity(flaky_once, input=key))


@wfr.workflow(name="three_children")
def three_children(ctx: DaprWorkflowContext, numbers: list):
    """Fan out to one child per number; a failed child is reported, not fatal."""
    tasks = [ctx.call_child_workflow(doubler, input=n) for n in numbers]
    ok, failed = [], []
    for n, task in zip(numbers, tasks):
        try:
            ok.append((yield task))
        except TaskFailedError as err:
            failed.append({"input": n, "error_type": err.details.error_type, "message": err.details.message})
    return {"sum": sum(ok), "ok": ok, "failed": failed}


@wfr.workflow(name="all_children")
def all_children(ctx: DaprWorkflowContext, numbers: list):
    """when_all over children: one failure fails the parent with the child's error."""
    return (yield when_all([ctx.call_child_workflow("doubler", input=n) for n in numbers]))


@wfr.workflow(name="retried_child")
def retried_child(ctx: DaprWorkflowContext, key: str):
    from orchestrator import RetryPolicy

    policy = RetryPolicy(first_retry_interval=timedelta(milliseconds=50), max_number_of_attempts=3)
    return (yield ctx.call_child_workflow(flaky_child, input=key, instance_id=f"{ctx.instance_id}-kid",
                                          retry_policy=policy))


@wfr.workflow(name="same_child_twice")
def same_child_twice(ctx: DaprWorkflowContext, n: int):
    """One explicit child id, called twice in a row and again after continue-as-new."""
    a = yield ctx.call_child_workflow(doubler, input=n, instance_id=f"{ctx.instance_id}-only")
    b = yield ctx.call_child_workflow(doubler, input=a, instance_id=f"{ctx.instance_id}-only")
    if n < 100:
        ctx.continue_as_new(b)
    return [n, a, b]


@wfr.workflow(name="paced_doubler")
def paced_doubler(ctx: DaprWorkflowContext, spec: dict):
    """Doubles ``spec['n']`` ``spec['rounds']`` times with a ``spec['pause_ms']`` timer after each:
    a run whose steps, activities and timers keep coming for a while (the resharding test)."""
    n = spec["n"]
    for _ in range(spec["rounds"]):
        n = yield ctx.call_activity(counted_double, input=n)
        yield ctx.create_timer(timedelta(milliseconds=spec["pause_ms"]))
    return n


# -- long-running work, for terminate and pause --------------------------------------------------
@wfr.workflow(name="ticker")
def ticker(ctx: DaprWorkflowContext, spec: dict):
    """Tick ``spec['n']`` times (forever when absent), then wait for 'finish' and return both."""
    count = 0
    while spec.get("n") is None or count < spec["n"]:
        count = yield ctx.call_activity(tick, input=spec["counter"])
    finish = yield ctx.wait_for_external_event("finish")
    return {"ticks": count, "finish": finish}


@wfr.activity(name="slow_tick")
def slow_tick(ctx: WorkflowActivityContext, counter: str) -> int:
    time.sleep(0.2)
    return int(counters().incr(f"test:{counter}"))


@wfr.workflow(name="ticker_tree")
def ticker_tree(ctx: DaprWorkflowContext, counter: str):
    """Two forever-ticking children, and a fan-out of 40 slow ticks that a small pool works through
    for seconds (so a terminate finds most of them still queued)."""
    kids = [ctx.call_child_workflow(ticker, input={"counter": counter}) for _ in range(2)]
    fan = when_all([ctx.call_activity(slow_tick, input=f"{counter}-fan") for _ in range(40)])
    yield when_all([fan, *kids])


# -- continue-as-new ------------------------------------------------------------------------------
@wfr.workflow(name="looper")
def looper(ctx: DaprWorkflowContext, state: dict):
    """Probe, then continue as new until ``limit`` generations ran."""
    n = state["n"]
    yield ctx.call_activity(tick, input=state["counter"]) if state.get("tick") else ctx.call_activity(double, input=n)
    ctx.set_custom_status({"n": n})
    if n + 1 >= state["limit"]:
        return {"generations": n + 1}
    ctx.continue_as_new({**state, "n": n + 1})


@wfr.workflow(name="event_carrier")
def event_carrier(ctx: DaprWorkflowContext, state: dict):
    """Generation 0 waits for 'go' (other events arrive first and stay buffered), then continues as
    new; generation 1 collects the 'item' events it was handed."""
    if state.get("gen", 0) == 0:
        yield ctx.wait_for_external_event("go")
        ctx.continue_as_new({"gen": 1, "want": state["want"]}, save_events=state["save"])
        return None
    items = []
    for _ in range(state["want"]):
        items.append((yield ctx.wait_for_external_event("item")))
    return items


# -- reuse ----------------------------------------------------------------------------------------
@wfr.workflow(name="echo_children")
def echo_children(ctx: DaprWorkflowContext, numbers: list):
    return (yield when_all([ctx.call_child_workflow(doubler, input=n) for n in numbers]))
