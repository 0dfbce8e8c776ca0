"""The chaos workload: mixed workflows run by real pools, and the oracle of their outputs.

Kinds: ``chain`` (sequential activities), ``fan_out`` (a 100-wide ``when_all``), ``timer`` (a durable
timer, then an activity), ``event`` (waits for an external event ``go``), ``parent`` (children run
in parallel), ``retry`` (an activity that fails its first attempts, under a retry policy) and
``mixed`` (all of the above in one run). :func:`expected` computes every output from the input
alone, so the suite can check each instance's output without trusting the engine.

Every activity execution increments ``chaos:exec`` field ``<instance>|<seq>|<attempt>`` in the store's
Redis (``REDIS_URL``, a cluster's client in a cluster run), before doing its work. A count above 1 is an at-least-once re-execution (a
pool killed after the activity ran but before its result was recorded). The increment waits for
Redis through restarts and outages, so an outage never turns into a spurious activity failure.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

from orchestrator import (
    DaprWorkflowContext,
    RetryPolicy,
    WorkflowActivityContext,
    WorkflowRuntime,
    when_all,
)
from orchestrator.store.connection import STORE_RETRYABLE, connect

wfr = WorkflowRuntime()
celery_app = wfr.celery_app
EXEC_KEY = "chaos:exec"
KINDS = ("chain", "fan_out", "timer", "event", "parent", "retry", "mixed")
FAN_OUT_WIDTH = 100
_RETRY = RetryPolicy(first_retry_interval=timedelta(milliseconds=300), backoff_coefficient=1.5,
                     max_number_of_attempts=6)
_redis: Any = None


def _r() -> Any:
    global _redis
    if _redis is None:
        _redis = connect(os.environ["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2)
    return _redis


def _count_execution(ctx: WorkflowActivityContext) -> None:
    field = f"{ctx.workflow_id}|{ctx.task_id}|{ctx.attempt}"
    deadline = time.monotonic() + 180
    while True:
        try:
            _r().hincrby(EXEC_KEY, field, 1)
            return
        except STORE_RETRYABLE:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- activities -----------------------------------------------------------------------------------
@wfr.activity(name="chaos_add")
def add(ctx: WorkflowActivityContext, pair: list) -> int:
    """``pair[0] + pair[1]``; sleeps ``pair[2]`` ms when given, so kills can land mid-activity."""
    _count_execution(ctx)
    if len(pair) > 2 and pair[2]:
        time.sleep(pair[2] / 1000)
    return pair[0] + pair[1]


@wfr.activity(name="chaos_flaky")
def flaky(ctx: WorkflowActivityContext, spec: dict) -> int:
    """Fails attempts ``1..fails`` (a ConnectionError, retried by the policy), then returns ``value``."""
    _count_execution(ctx)
    if ctx.attempt <= spec["fails"]:
        raise ConnectionError(f"attempt {ctx.attempt} of a flaky call failed on purpose")
    return spec["value"] * 10 + ctx.attempt


# -- workflows ------------------------------------------------------------------------------------
@wfr.workflow(name="chaos_chain")
def chain(ctx: DaprWorkflowContext, n: int):
    total = 0
    for i in range(n):
        total = yield ctx.call_activity(add, input=[total, i, 5 if i % 3 == 0 else 0])
    return total


@wfr.workflow(name="chaos_paced_chain")
def paced_chain(ctx: DaprWorkflowContext, spec: dict):
    """``chain`` with every activity taking ``spec["ms"]``: a run long enough to fail something under it."""
    total = 0
    for i in range(spec["n"]):
        total = yield ctx.call_activity(add, input=[total, i, spec["ms"]])
    return total


@wfr.workflow(name="chaos_fan_out")
def fan_out(ctx: DaprWorkflowContext, spec: dict):
    results = yield when_all([ctx.call_activity(add, input=[i, spec["base"]]) for i in range(spec["width"])])
    return sum(results)


@wfr.workflow(name="chaos_timer")
def timer(ctx: DaprWorkflowContext, spec: dict):
    yield ctx.create_timer(timedelta(milliseconds=spec["ms"]))
    return (yield ctx.call_activity(add, input=[spec["value"], 1]))


@wfr.workflow(name="chaos_event")
def event(ctx: DaprWorkflowContext, n: int):
    data = yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity(add, input=[data["value"], n]))


@wfr.workflow(name="chaos_parent")
def parent(ctx: DaprWorkflowContext, k: int):
    results = yield when_all([ctx.call_child_workflow(chain, input=2 + j) for j in range(k)])
    return results


@wfr.workflow(name="chaos_retry")
def retry(ctx: DaprWorkflowContext, spec: dict):
    return (yield ctx.call_activity(flaky, input=spec, retry_policy=_RETRY))


@wfr.workflow(name="chaos_mixed")
def mixed(ctx: DaprWorkflowContext, n: int):
    a = yield ctx.call_activity(add, input=[n, 1])
    wide = yield when_all([ctx.call_activity(add, input=[a, i]) for i in range(10)])
    yield ctx.create_timer(timedelta(milliseconds=300))
    child = yield ctx.call_child_workflow(chain, input=3)
    flaky_value = yield ctx.call_activity(flaky, input={"fails": 1, "value": n}, retry_policy=_RETRY)
    return {"a": a, "wide": sum(wide), "child": child, "flaky": flaky_value}


WORKFLOWS = {"chain": "chaos_chain", "fan_out": "chaos_fan_out", "timer": "chaos_timer", "event": "chaos_event",
             "parent": "chaos_parent", "retry": "chaos_retry", "mixed": "chaos_mixed"}


# -- the workload and its oracle --------------------------------------------------------------------
# One cycle of kinds; workflow i has kind PATTERN[i % len(PATTERN)] (about 1 in 10 is a 100-wide fan-out).
PATTERN = ("chain", "timer", "event", "parent", "retry", "chain", "mixed", "fan_out", "event", "timer",
           "chain", "retry", "parent", "event", "chain", "timer", "mixed", "retry", "fan_out", "chain")


def workload_input(kind: str, i: int) -> Any:
    """The input of workflow number ``i`` of ``kind``."""
    if kind == "chain":
        return 3 + i % 6
    if kind == "fan_out":
        return {"width": FAN_OUT_WIDTH, "base": i}
    if kind == "timer":
        return {"ms": 200 + (i * 137) % 2500, "value": i}
    if kind == "event":
        return i
    if kind == "parent":
        return 2 + i % 3
    if kind == "retry":
        return {"fails": 1 + i % 2, "value": i}
    return i  # mixed


def event_data(i: int) -> dict:
    """What the driver raises as ``go`` to event workflow number ``i``."""
    return {"value": i * 7}


def _chain(n: int) -> int:
    return sum(range(n))


def expected(kind: str, i: int) -> Any:
    """The output workflow number ``i`` of ``kind`` must end with."""
    arg = workload_input(kind, i)
    if kind == "chain":
        return _chain(arg)
    if kind == "fan_out":
        return sum(j + arg["base"] for j in range(arg["width"]))
    if kind == "timer":
        return arg["value"] + 1
    if kind == "event":
        return event_data(i)["value"] + arg
    if kind == "parent":
        return [_chain(2 + j) for j in range(arg)]
    if kind == "retry":
        return arg["value"] * 10 + arg["fails"] + 1
    a = arg + 1
    return {"a": a, "wide": sum(a + j for j in range(10)), "child": _chain(3), "flaky": arg * 10 + 2}


def children(kind: str, i: int) -> int:
    """How many child instances workflow number ``i`` starts."""
    return workload_input(kind, i) if kind == "parent" else 1 if kind == "mixed" else 0
