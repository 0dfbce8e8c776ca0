"""Workflows and activities with flow-control limits, for the flow-control tests (real pools)."""

from __future__ import annotations

import os
import time

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_all

wfr = WorkflowRuntime()
WORK_SECONDS = float(os.environ.get("FLOW_APP_WORK_SECONDS", "0.3"))


@wfr.activity(name="work")
def work(ctx: WorkflowActivityContext, order: dict) -> str:
    time.sleep(WORK_SECONDS)
    return f"{order['customer']}-{order['n']}"


@wfr.workflow(name="customer_order", concurrency=6, concurrency_key=lambda order: order["customer"],
              key_concurrency=2)
def customer_order(ctx: DaprWorkflowContext, order: dict):
    """At most 2 running per customer, 6 in all: a run holds its slot from its first step to its end."""
    first = yield ctx.call_activity(work, input=order)
    second = yield ctx.call_activity(work, input=order)
    return [first, second]


@wfr.activity(name="ping", rate=10, per=1.0)
def ping(ctx: WorkflowActivityContext, n: int) -> int:
    return n


@wfr.workflow(name="ping_many")
def ping_many(ctx: DaprWorkflowContext, count: int):
    """A fan-out of ``count`` pings: the rate limit (10 per second across pools) spaces their starts."""
    results = yield when_all([ctx.call_activity(ping, input=i) for i in range(count)])
    return len(results)


@wfr.activity(name="limited_step", concurrency=4)
def limited_step(ctx: WorkflowActivityContext, n: int) -> int:
    time.sleep(0.2)
    return n


@wfr.workflow(name="limited_fanout")
def limited_fanout(ctx: DaprWorkflowContext, count: int):
    """A fan-out whose activity runs at most 4 at once across pools."""
    results = yield when_all([ctx.call_activity(limited_step, input=i) for i in range(count)])
    return sum(results)


@wfr.workflow(name="plain_order")
def plain_order(ctx: DaprWorkflowContext, order: dict):
    return (yield ctx.call_activity(work, input=order))


@wfr.activity(name="exclusive_work", concurrency=1)
def exclusive_work(ctx: WorkflowActivityContext, n: int) -> int:
    """One at a time across every pool (the killed-holder test)."""
    time.sleep(WORK_SECONDS)
    return n


@wfr.workflow(name="exclusive_fanout")
def exclusive_fanout(ctx: DaprWorkflowContext, count: int):
    results = yield when_all([ctx.call_activity(exclusive_work, input=i) for i in range(count)])
    return sorted(results)
