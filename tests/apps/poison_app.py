"""Workflows whose code misbehaves (issue 19, classes 3 and 4): it raises SystemExit or kills its own
process, loops without yielding, or reads the clock. Run by real pools with the engine's defaults.

Activities count their runs in ``poison:runs:<instance>`` (``REDIS_URL``), so a test sees how often
code that kills its process was tried.
"""

from __future__ import annotations

import datetime
import os
import random
import time
from datetime import timedelta

from orchestrator import DaprWorkflowContext, RetryPolicy, WorkflowActivityContext, WorkflowRuntime
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()
celery_app = wfr.celery_app

_FAST_RETRIES = RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=2)


def runs(r, instance_id: str) -> int:
    return int(r.get(f"poison:runs:{instance_id}") or 0)


# -- activities ---------------------------------------------------------------------------------------
@wfr.activity(name="poison_echo")
def echo(ctx: WorkflowActivityContext, value: object) -> object:
    return value


@wfr.activity(name="poison_exit")
def raises_system_exit(ctx: WorkflowActivityContext, code: int) -> None:
    app_redis().incr(f"poison:runs:{ctx.workflow_id}")
    raise SystemExit(code)


@wfr.activity(name="poison_kill")
def kills_its_process(ctx: WorkflowActivityContext, _: object) -> None:
    app_redis().incr(f"poison:runs:{ctx.workflow_id}")
    os._exit(9)


# -- workflows ----------------------------------------------------------------------------------------
@wfr.workflow(name="poison_ok")
def ok(ctx: DaprWorkflowContext, value: object):
    return (yield ctx.call_activity(echo, input=value))


@wfr.workflow(name="poison_raises")
def raises_base_exception(ctx: DaprWorkflowContext, kind: str):
    """Raises ``kind`` (SystemExit, KeyboardInterrupt or BaseException) in workflow code after one activity."""
    yield ctx.call_activity(echo, input=kind)
    raise {"SystemExit": SystemExit(3), "KeyboardInterrupt": KeyboardInterrupt(),
           "BaseException": BaseException("bare")}[kind]


@wfr.workflow(name="poison_activity_exit")
def activity_raises_system_exit(ctx: DaprWorkflowContext, _: object):
    return (yield ctx.call_activity(raises_system_exit, input=4, retry_policy=_FAST_RETRIES))


@wfr.workflow(name="poison_activity_kill")
def activity_kills_its_process(ctx: DaprWorkflowContext, _: object):
    return (yield ctx.call_activity(kills_its_process, input=None, retry_policy=_FAST_RETRIES))


@wfr.workflow(name="poison_step_kill")
def step_kills_its_process(ctx: DaprWorkflowContext, _: object):
    yield ctx.call_activity(echo, input=1)
    os._exit(9)


@wfr.workflow(name="poison_spin")
def spins_without_yielding(ctx: DaprWorkflowContext, _: object):
    yield ctx.call_activity(echo, input=1)
    while True:  # never yields again
        pass


@wfr.workflow(name="poison_blocks")
def blocks_in_workflow_code(ctx: DaprWorkflowContext, seconds: float):
    yield ctx.call_activity(echo, input=1)
    time.sleep(seconds)  # blocking work that belongs in an activity
    return "woke"


@wfr.workflow(name="poison_clock")
def reads_the_clock(ctx: DaprWorkflowContext, _: object):
    stamp = datetime.datetime.now().isoformat()
    lucky = random.random()
    yield ctx.call_activity(echo, input=[stamp, lucky])
    return "read"
