"""Workflows for the core engine's integration tests (run by real worker pools)."""

from __future__ import annotations

import os
import time

from orchestrator import (
    DaprWorkflowContext,
    TaskFailedError,
    WorkflowActivityContext,
    WorkflowRuntime,
    when_all,
    when_any,
)
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()
celery_app = wfr.celery_app  # for plain `celery -A module:celery_app worker`
VERSION = os.environ.get("CORE_APP_VERSION", "1")


@wfr.activity(name="add")
def add(ctx: WorkflowActivityContext, pair: list) -> int:
    return pair[0] + pair[1]


@wfr.activity(name="slow_add")
def slow_add(ctx: WorkflowActivityContext, pair: list) -> int:
    time.sleep(pair[2] if len(pair) > 2 else 0.05)
    return pair[0] + pair[1]


@wfr.activity(name="explode")
def explode(ctx: WorkflowActivityContext, message: str) -> None:
    raise KeyError(message)


@wfr.workflow(name="chain")
def chain(ctx: DaprWorkflowContext, n: int):
    total = 0
    for i in range(n):
        total = yield ctx.call_activity(add, input=[total, i])
    return total


@wfr.workflow(name="slow_chain")
def slow_chain(ctx: DaprWorkflowContext, n: int):
    total = 0
    for i in range(n):
        total = yield ctx.call_activity(slow_add, input=[total, i, 0.05])
    return total


@wfr.workflow(name="fan_out")
def fan_out(ctx: DaprWorkflowContext, n: int):
    results = yield when_all([ctx.call_activity(add, input=[i, i]) for i in range(n)])
    return {"count": len(results), "sum": sum(results), "first": results[:3]}


@wfr.activity(name="nap_pid")
def nap_pid(ctx: WorkflowActivityContext, seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@wfr.workflow(name="slow_fan_out")
def slow_fan_out(ctx: DaprWorkflowContext, spec: dict):
    """``n`` activities of ``nap`` seconds each; returns the pid of the process that ran each."""
    return (yield when_all([ctx.call_activity(nap_pid, input=spec["nap"]) for _ in range(spec["n"])]))


@wfr.activity(name="marked_nap")
def marked_nap(ctx: WorkflowActivityContext, spec: dict) -> int:
    """Records which process runs call ``i`` (and how often) before napping: crash tests kill it."""
    app_redis().hset("core:nap_pid", str(spec["i"]), os.getpid())
    app_redis().hincrby("core:nap_runs", str(spec["i"]), 1)
    time.sleep(spec["nap"])
    return spec["i"]


@wfr.workflow(name="nap_chain")
def nap_chain(ctx: DaprWorkflowContext, spec: dict):
    done = []
    for i in range(spec["n"]):
        done.append((yield ctx.call_activity(marked_nap, input={"i": i, "nap": spec["nap"]})))
    return done


@wfr.workflow(name="race")
def race(ctx: DaprWorkflowContext, _):
    fast = ctx.call_activity(slow_add, input=[1, 1, 0.01])
    slow = ctx.call_activity(slow_add, input=[100, 100, 2.0])
    winner = yield when_any([fast, slow])
    return {"fast_won": winner == fast, "value": winner.get_result()}


@wfr.workflow(name="catches_failure")
def catches_failure(ctx: DaprWorkflowContext, message: str):
    try:
        yield ctx.call_activity(explode, input=message)
    except TaskFailedError as err:
        return {"error_type": err.details.error_type, "message": err.details.message,
                "has_stack": "explode" in (err.details.stack_trace or "")}


@wfr.workflow(name="lets_failure_escape")
def lets_failure_escape(ctx: DaprWorkflowContext, message: str):
    yield ctx.call_activity(explode, input=message)


@wfr.workflow(name="evolving")
def evolving(ctx: DaprWorkflowContext, _):
    """Version 2 calls a different activity first: replay of a v1 history must refuse it."""
    first = "add" if VERSION == "1" else "slow_add"
    a = yield ctx.call_activity(first, input=[1, 2])
    approval = yield ctx.wait_for_external_event("go")
    return [a, approval]
