"""Activities that heartbeat (issue 14): long ones that report progress, one that stops, one that
resumes from the last details its earlier attempt sent. Runs are counted in ``hb:runs:<instance>``."""

from __future__ import annotations

import time
from datetime import timedelta

from orchestrator import DaprWorkflowContext, RetryPolicy, WorkflowActivityContext, WorkflowRuntime, when_all
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()
celery_app = wfr.celery_app
_RETRY = RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=3)


def runs(r, instance_id: str) -> int:
    return int(r.get(f"hb:runs:{instance_id}") or 0)


@wfr.activity(name="hb_long")
def long_with_heartbeats(ctx: WorkflowActivityContext, seconds: float) -> str:
    """Works ``seconds``, heartbeating every 0.3 s."""
    app_redis().incr(f"hb:runs:{ctx.workflow_id}")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.heartbeat({"left": round(end - time.monotonic(), 1)})
        time.sleep(0.3)
    return "worked"


@wfr.activity(name="hb_resumes")
def stops_then_resumes(ctx: WorkflowActivityContext, items: int) -> dict:
    """Attempt 1 processes 3 items, heartbeating each, then hangs; a later attempt starts after the
    last item its predecessor reported."""
    app_redis().incr(f"hb:runs:{ctx.workflow_id}")
    start = (ctx.heartbeat_details or {}).get("done", 0)
    for i in range(start, items):
        ctx.heartbeat({"done": i + 1})
        if ctx.attempt == 1 and i + 1 == 3:
            time.sleep(30)  # stops heartbeating
    return {"resumed_from": start, "attempt": ctx.attempt}


@wfr.activity(name="hb_slow")
def slow(ctx: WorkflowActivityContext, seconds: float) -> str:
    app_redis().incr(f"hb:runs:{ctx.workflow_id}")
    time.sleep(seconds)
    return "slow"


@wfr.workflow(name="hb_long_wf")
def long_wf(ctx: DaprWorkflowContext, seconds: float):
    return (yield ctx.call_activity(long_with_heartbeats, input=seconds, heartbeat_timeout=timedelta(seconds=2),
                                    retry_policy=_RETRY))


@wfr.workflow(name="hb_resumes_wf")
def resumes_wf(ctx: DaprWorkflowContext, items: int):
    return (yield ctx.call_activity(stops_then_resumes, input=items, heartbeat_timeout=timedelta(seconds=2),
                                    retry_policy=_RETRY))


@wfr.workflow(name="hb_start_to_close_wf")
def start_to_close_wf(ctx: DaprWorkflowContext, seconds: float):
    return (yield ctx.call_activity(slow, input=seconds, start_to_close_timeout=timedelta(seconds=1)))


@wfr.workflow(name="hb_slow_wf")
def slow_wf(ctx: DaprWorkflowContext, seconds: float):
    return (yield ctx.call_activity(slow, input=seconds))


@wfr.workflow(name="hb_fan_out")
def fan_out(ctx: DaprWorkflowContext, n: int):
    results = yield when_all([ctx.call_activity(slow, input=0.1) for _ in range(n)])
    return len(results)
