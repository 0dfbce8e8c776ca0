"""Workflows for the concurrency, bad-input and security tests (run by real pools or in-test engines).

Activities count their executions in Redis (``REDIS_URL``): ``INCR rel:exec:<instance>:<seq>``, so a
SIGKILLed or duplicated execution is visible to the test.
"""

from __future__ import annotations

import time
from datetime import timedelta

import redis

from orchestrator import DaprWorkflowContext, RetryPolicy, WorkflowActivityContext, WorkflowRuntime
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()
celery_app = wfr.celery_app
_r = app_redis


def executions(r: redis.Redis, instance_id: str, seq: int) -> int:
    return int(r.get(f"rel:exec:{instance_id}:{seq}") or 0)


# -- activities ---------------------------------------------------------------------------------------
@wfr.activity(name="rel_echo")
def echo(ctx: WorkflowActivityContext, arg: dict) -> object:
    """Counts itself, sleeps ``arg["sleep"]`` seconds, returns ``arg["value"]``."""
    _r().incr(f"rel:exec:{ctx.workflow_id}:{ctx.task_id}")
    time.sleep(arg.get("sleep", 0))
    return arg.get("value")


@wfr.activity(name="rel_set")
def returns_a_set(ctx: WorkflowActivityContext, _: object) -> object:
    return {1, 2, 3}


@wfr.activity(name="rel_big")
def returns_big(ctx: WorkflowActivityContext, size: int) -> str:
    return "x" * size


# -- workflows ----------------------------------------------------------------------------------------
@wfr.workflow(name="rel_one")
def one_activity(ctx: DaprWorkflowContext, arg: dict):
    return (yield ctx.call_activity(echo, input=arg))


@wfr.workflow(name="rel_collect")
def collect(ctx: DaprWorkflowContext, n: int):
    """Waits for ``n`` events named ``go`` and returns their data in arrival order."""
    got = []
    for _ in range(n):
        got.append((yield ctx.wait_for_external_event("go")))
    return got


@wfr.workflow(name="rel_wait")
def wait_forever(ctx: DaprWorkflowContext, _: object):
    return (yield ctx.wait_for_external_event("never"))


@wfr.workflow(name="rel_call")
def call_named(ctx: DaprWorkflowContext, arg: dict):
    """Calls the activity named ``arg["activity"]`` with ``arg["input"]``; a failure is returned."""
    try:
        return {"ok": (yield ctx.call_activity(arg["activity"], input=arg.get("input")))}
    except Exception as err:  # noqa: BLE001 - the test reads the failure the workflow saw
        return {"error_type": err.details.error_type, "message": err.details.message}


@wfr.workflow(name="rel_return_set")
def return_set(ctx: DaprWorkflowContext, _: object):
    yield ctx.call_activity(echo, input={"value": 1})
    return {1, 2}


@wfr.workflow(name="rel_return_big")
def return_big(ctx: DaprWorkflowContext, size: int):
    yield ctx.call_activity(echo, input={"value": 1})
    return "y" * size


@wfr.workflow(name="rel_big_input")
def big_activity_input(ctx: DaprWorkflowContext, size: int):
    return (yield ctx.call_activity(echo, input={"value": "z" * size}))


@wfr.workflow(name="rel_set_input")
def set_activity_input(ctx: DaprWorkflowContext, _: object):
    return (yield ctx.call_activity(echo, input={"value": {1, 2}}))


@wfr.workflow(name="rel_raises")
def raises(ctx: DaprWorkflowContext, message: str):
    yield ctx.call_activity(echo, input={"value": 1})
    raise ValueError(message)


@wfr.workflow(name="rel_yields_int")
def yields_non_task(ctx: DaprWorkflowContext, _: object):
    yield 42


@wfr.workflow(name="rel_plain")
def plain_function(ctx: DaprWorkflowContext, x: int) -> int:
    """Not a generator: it never yields, so it completes in its first step with its return value."""
    return x * 2


@wfr.workflow(name="rel_bad_policy")
def bad_policy(ctx: DaprWorkflowContext, _: object):
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=0)
    return (yield ctx.call_activity(echo, input={"value": 1}, retry_policy=policy))


@wfr.workflow(name="rel_event_then_echo")
def event_then_echo(ctx: DaprWorkflowContext, _: object):
    data = yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity(echo, input={"value": data}))


@wfr.workflow(name="rel_gen_no_yield")
def generator_that_never_yields(ctx: DaprWorkflowContext, x: int):
    """A generator function whose body returns before reaching its yield."""
    if x > 0:
        return x + 1
    yield ctx.call_activity(echo, input={"value": x})


@wfr.workflow(name="rel_sleep")
def sleep_then_return(ctx: DaprWorkflowContext, ms: int):
    yield ctx.create_timer(timedelta(milliseconds=ms))
    return "woke"


@wfr.workflow(name="rel_custom_status")
def bad_custom_status(ctx: DaprWorkflowContext, size: int):
    ctx.set_custom_status("s" * size)
    return (yield ctx.call_activity(echo, input={"value": 1}))


@wfr.workflow(name="rel_child_named")
def child_named(ctx: DaprWorkflowContext, name: str):
    return (yield ctx.call_child_workflow(name, input=1))
