"""Workflows for the retry / timeout / circuit-breaker acceptance tests (run by real worker pools).

Activities record every execution in Redis (``REDIS_URL``), never in process memory, so a SIGKILLed
pool cannot make a test forget what already ran: ``RPUSH <key>:runs <attempt>`` per execution.
"""

from __future__ import annotations

import time
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded

from orchestrator import (
    DaprWorkflowContext,
    NonRetryableError,
    RetryPolicy,
    TaskFailedError,
    WorkflowActivityContext,
    WorkflowRuntime,
)
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()
celery_app = wfr.celery_app
_r = app_redis


def _record(key: str, attempt: int) -> None:
    _r().rpush(f"{key}:runs", attempt)


def _policy(spec: dict) -> RetryPolicy:
    return RetryPolicy(
        first_retry_interval=timedelta(seconds=spec.get("interval", 1)),
        backoff_coefficient=spec.get("coefficient", 2),
        max_number_of_attempts=spec.get("attempts", 5),
        non_retryable_error_types=spec.get("non_retryable", ()),
    )


@wfr.activity(name="flaky")
def flaky(ctx: WorkflowActivityContext, arg: dict) -> dict:
    """Fails attempts 1..fail_times with ConnectionError, then succeeds."""
    _record(arg["key"], ctx.attempt)
    if ctx.attempt <= arg["fail_times"]:
        raise ConnectionError(f"attempt {ctx.attempt} could not connect")
    return {"attempt": ctx.attempt}


@wfr.activity(name="refuse")
def refuse(ctx: WorkflowActivityContext, arg: dict) -> None:
    """A business error: NonRetryableError, or the error named by ``arg["raise"]``."""
    _record(arg["key"], ctx.attempt)
    if arg.get("raise") == "ValueError":
        raise ValueError("amount must be positive")
    raise NonRetryableError("card declined")


@wfr.activity(name="slow_first")
def slow_first(ctx: WorkflowActivityContext, arg: dict) -> dict:
    """Attempt 1 sleeps past the call's timeout and then returns; later attempts return at once."""
    _record(arg["key"], ctx.attempt)
    if ctx.attempt == 1:
        time.sleep(arg["sleep"])
        _r().set(f"{arg['key']}:late-returned", 1)
    return {"attempt": ctx.attempt}


@wfr.activity(name="dependency")
def dependency(ctx: WorkflowActivityContext, arg: dict) -> str:
    """Fails while the Redis flag ``arg["down"]`` is set, like a downstream service that is down."""
    _record(arg["key"], ctx.attempt)
    if _r().exists(arg["down"]):
        raise ConnectionError("dependency is down")
    return "ok"


@wfr.activity(name="overrun")
def overrun(ctx: WorkflowActivityContext, arg: dict) -> str:
    """Runs past Celery's soft time limit; ``stubborn`` also ignores it, so the hard limit kills it."""
    _record(arg["key"], ctx.attempt)
    try:
        time.sleep(arg["sleep"])
    except SoftTimeLimitExceeded:
        if not arg.get("stubborn"):
            raise
        time.sleep(arg["sleep"])
    return "finished"


@wfr.workflow(name="retry_call")
def retry_call(ctx: DaprWorkflowContext, spec: dict):
    """Call ``spec["activity"]`` with the retry policy described by ``spec``; failures escape."""
    return (yield ctx.call_activity(spec["activity"], input=spec["input"], retry_policy=_policy(spec)))


@wfr.workflow(name="timed_call")
def timed_call(ctx: DaprWorkflowContext, spec: dict):
    """A call with a per-attempt timeout; then waits for "finish" so the test can watch a late result."""
    policy = _policy(spec) if spec.get("attempts") else None
    result = yield ctx.call_activity(spec["activity"], input=spec["input"], retry_policy=policy,
                                     timeout=timedelta(seconds=spec["timeout"]))
    yield ctx.wait_for_external_event("finish")
    return result


@wfr.workflow(name="plain_call")
def plain_call(ctx: DaprWorkflowContext, spec: dict):
    """One call without a retry policy; a failure is returned, not raised, so the test can read it."""
    try:
        return {"ok": (yield ctx.call_activity(spec["activity"], input=spec["input"]))}
    except TaskFailedError as err:
        return {"error_type": err.details.error_type, "message": err.details.message,
                "retry_after_ms": err.details.retry_after_ms}
