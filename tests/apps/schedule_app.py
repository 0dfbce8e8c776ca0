"""Workflows the schedule tests start on a schedule (run by real worker pools)."""

from __future__ import annotations

import os
from datetime import timedelta

from orchestrator import DaprWorkflowContext, RetryPolicy, WorkflowActivityContext, WorkflowRuntime
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()

# record_run writes to the test's Redis, which the restart test kills: a run whose activity meets the
# outage retries it, as a user's activity against a restarting service would.
THROUGH_OUTAGES = RetryPolicy(first_retry_interval=timedelta(milliseconds=500), max_number_of_attempts=10,
                              backoff_coefficient=1.5, max_retry_interval=timedelta(seconds=3))


@wfr.activity(name="record_run")
def record_run(ctx: WorkflowActivityContext, tag: str) -> str:
    """Each execution of the activity, with the pool process that ran it (a side effect to count)."""
    app_redis().rpush(f"test:runs:{tag}", f"{ctx.workflow_id}|{os.getpid()}")
    return ctx.workflow_id


@wfr.workflow(name="tick")
def tick(ctx: DaprWorkflowContext, tag: str):
    yield ctx.call_activity(record_run, input=tag, retry_policy=THROUGH_OUTAGES)
    return ctx.instance_id


@wfr.workflow(name="slow_tick")
def slow_tick(ctx: DaprWorkflowContext, spec: dict):
    """Runs for ``spec["seconds"]`` (a durable timer), recording when it started."""
    yield ctx.call_activity(record_run, input=spec["tag"])
    yield ctx.create_timer(timedelta(seconds=spec["seconds"]))
    return ctx.instance_id
