"""Workflows for the dashboard's integration and browser tests (run by real worker pools).

Each one produces a history shape the run page must draw: a fan-out, a retry chain, a when_any
race, an event-or-timeout race, child workflows, a failure with a stack, a run that waits forever.
"""

from __future__ import annotations

import time
from datetime import timedelta

from orchestrator import DaprWorkflowContext, RetryPolicy, WorkflowActivityContext, WorkflowRuntime, when_all, when_any

wfr = WorkflowRuntime()
celery_app = wfr.celery_app

QUICK_RETRY = RetryPolicy(first_retry_interval=timedelta(milliseconds=200), max_number_of_attempts=3)


@wfr.activity(name="work")
def work(ctx: WorkflowActivityContext, item: int) -> int:
    time.sleep(0.05 + 0.02 * (item % 4))
    return item * item


@wfr.activity(name="summarize")
def summarize(ctx: WorkflowActivityContext, values: list) -> dict:
    return {"count": len(values), "total": sum(values)}


@wfr.activity(name="flaky")
def flaky(ctx: WorkflowActivityContext, label: str) -> str:
    if ctx.attempt < 2:
        raise ConnectionError(f"{label}: transient failure on attempt {ctx.attempt}")
    return f"{label} ok on attempt {ctx.attempt}"


@wfr.activity(name="pause")
def pause(ctx: WorkflowActivityContext, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@wfr.activity(name="charge_card")
def charge_card(ctx: WorkflowActivityContext, order: dict) -> dict:
    raise ValueError(f"card declined for order {order.get('id')}")


@wfr.workflow(name="fan_out_report")
def fan_out_report(ctx: DaprWorkflowContext, n: int):
    """Fan out n work items, fan in, then summarize: three stages, the middle one parallel."""
    squares = yield when_all([ctx.call_activity(work, input=i) for i in range(n)])
    summary = yield ctx.call_activity(summarize, input=squares)
    return summary


@wfr.workflow(name="retrying")
def retrying(ctx: DaprWorkflowContext, label: str):
    first = yield ctx.call_activity(flaky, input=label, retry_policy=QUICK_RETRY)
    return first


@wfr.workflow(name="race")
def race(ctx: DaprWorkflowContext, _):
    fast = ctx.call_activity(pause, input=0.05)
    slow = ctx.call_activity(pause, input=3.0)
    winner = yield when_any([fast, slow])
    return {"fast_won": winner == fast}


@wfr.workflow(name="approval")
def approval(ctx: DaprWorkflowContext, order: dict):
    """Wait for an approval event or time out: the event/timer race of the run page."""
    approved = ctx.wait_for_external_event("approve")
    timeout = ctx.create_timer(timedelta(seconds=60))
    winner = yield when_any([approved, timeout])
    if winner == timeout:
        return {"approved": False}
    decision = approved.get_result()
    yield ctx.call_activity(work, input=1)
    return {"approved": True, "by": decision}


@wfr.workflow(name="parent")
def parent(ctx: DaprWorkflowContext, n: int):
    results = yield when_all([ctx.call_child_workflow(fan_out_report, input=2) for _ in range(n)])
    return results


@wfr.workflow(name="checkout")
def checkout(ctx: DaprWorkflowContext, order: dict):
    """Fails: its activity raises, so the run page shows the failure and its stack."""
    yield ctx.call_activity(work, input=2)
    return (yield ctx.call_activity(charge_card, input=order))


@wfr.workflow(name="waiter")
def waiter(ctx: DaprWorkflowContext, payload):
    """Does one step and then waits for an event that never comes: a run to terminate."""
    yield ctx.call_activity(work, input=3)
    ctx.set_custom_status({"stage": "waiting for go"})
    return (yield ctx.wait_for_external_event("go"))


@wfr.workflow(name="echo")
def echo(ctx: DaprWorkflowContext, payload):
    return payload


@wfr.activity(name="step")
def step(ctx: WorkflowActivityContext, value: int) -> int:
    return value + 1


@wfr.workflow(name="a_b_c")
def a_b_c(ctx: DaprWorkflowContext, _):
    """Schedules a and b together, awaits a, calls c, then awaits b: no race anywhere."""
    a = ctx.call_activity(pause, input=0.05)
    b = ctx.call_activity(pause, input=0.3)
    first = yield a
    third = yield ctx.call_activity(pause, input=0.05)
    second = yield b
    return [first, second, third]


@wfr.workflow(name="wide_fan_out")
def wide_fan_out(ctx: DaprWorkflowContext, n: int):
    """n slow branches, so a page opened mid-run sees some done, some running, some queued."""
    done = yield when_all([ctx.call_activity(pause, input=0.25) for _ in range(n)])
    return len(done)


@wfr.workflow(name="long_chain")
def long_chain(ctx: DaprWorkflowContext, n: int):
    value = 0
    for _ in range(n):
        value = yield ctx.call_activity(step, input=value)
    return value
