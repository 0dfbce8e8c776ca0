"""Workflows for the hardening tests (issue 19): late results of other runs, code and values that cannot
be recorded, Redis trouble, small cases. Run by real pools with the engine's default settings.

``hard_gate`` blocks until the test opens its gate (``SET hard:open:<gate>``), so a test can hold an
activity in flight while it terminates, replaces or restarts things around it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from orchestrator import DaprWorkflowContext, RetryPolicy, WorkflowActivityContext, WorkflowRuntime
from tests.support.app_redis import app_redis

wfr = WorkflowRuntime()
celery_app = wfr.celery_app


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


class Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("this object cannot be shown")


# -- activities ---------------------------------------------------------------------------------------
@wfr.activity(name="hard_gate")
def gate(ctx: WorkflowActivityContext, arg: dict) -> object:
    """Counts its start in ``hard:started:<gate>``, waits for ``hard:open:<gate>``, returns ``arg["value"]``."""
    r = app_redis()
    r.incr(f"hard:started:{arg['gate']}")
    deadline = time.monotonic() + 120
    while not r.exists(f"hard:open:{arg['gate']}"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {arg['gate']!r} was never opened")
        time.sleep(0.02)
    return arg["value"]


@wfr.activity(name="hard_echo")
def echo(ctx: WorkflowActivityContext, value: object) -> object:
    return value


@wfr.activity(name="hard_misbehave")
def misbehave(ctx: WorkflowActivityContext, case: str) -> object:
    """Activity code that produces what cannot be recorded as it is."""
    if case == "raises_unprintable":
        raise UnprintableError()
    if case == "raises_surrogate":
        raise ValueError("bad text \ud800 here")
    if case == "raises_huge":
        raise ValueError("x" * 5_000_000)
    if case == "returns_bigint":
        return {"n": 2**64}
    if case == "returns_surrogate":
        return ["\udfff"]
    if case == "returns_deep":
        return deep(5000)
    if case == "fails":
        raise RuntimeError("failed on purpose")
    raise AssertionError(case)


# -- workflows ----------------------------------------------------------------------------------------
@wfr.workflow(name="hard_ok")
def ok(ctx: DaprWorkflowContext, value: object):
    return (yield ctx.call_activity(echo, input=value))


@wfr.workflow(name="hard_gated")
def gated(ctx: DaprWorkflowContext, arg: dict):
    return (yield ctx.call_activity(gate, input=arg))


@wfr.workflow(name="hard_wait_child")
def wait_child(ctx: DaprWorkflowContext, _: object):
    return (yield ctx.wait_for_external_event("go"))


@wfr.workflow(name="hard_parent")
def parent(ctx: DaprWorkflowContext, arg: dict):
    """Call #1 is a child that waits for "go" (``arg["child"]``), or a gated activity."""
    if arg.get("child"):
        return (yield ctx.call_child_workflow(wait_child))
    return (yield ctx.call_activity(gate, input=arg))


@wfr.workflow(name="hard_recurse")
def recurse(ctx: DaprWorkflowContext, levels: int):
    """A chain of ``levels`` children, each started with a default (generated) child id."""
    if levels == 0:
        return 0
    return 1 + (yield ctx.call_child_workflow(recurse, input=levels - 1))


def _bad_step(ctx: DaprWorkflowContext, case: str):  # noqa: C901 - one branch per case
    if case == "activity_input_bigint":
        yield ctx.call_activity(echo, input={"n": 2**70})
    elif case == "activity_input_surrogate":
        yield ctx.call_activity(echo, input="\ud800")
    elif case == "activity_input_deep":
        yield ctx.call_activity(echo, input=deep(5000))
    elif case == "custom_status_bigint":
        ctx.set_custom_status({"progress": 2**70})
        yield ctx.call_activity(echo, input=1)
    elif case == "continue_as_new_surrogate":
        ctx.continue_as_new({"case": "\ud800"})
        yield ctx.call_activity(echo, input=1)
    elif case == "raises_unprintable":
        yield ctx.call_activity(echo, input=1)
        raise UnprintableError()
    elif case == "yields_unrepresentable":
        yield Unrepresentable()
    elif case == "child_id_invalid":
        yield ctx.call_child_workflow(ok, input=1, instance_id="bad id{}")
    elif case == "child_id_newline":
        yield ctx.call_child_workflow(ok, input=1, instance_id="child-1\n")
    elif case == "event_name_newline":
        yield ctx.wait_for_external_event("approval\n")
    elif case == "activity_name_huge":
        yield ctx.call_activity("a" * 5000, input=1)
    elif case == "app_id_surrogate":
        yield ctx.call_activity(echo, input=1, app_id="billing\ud800")
    elif case == "retry_wait_raises":
        policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3,
                             wait=lambda state: 1 / 0)
        yield ctx.call_activity(misbehave, input="fails", retry_policy=policy)
    elif case.startswith("activity_"):
        yield ctx.call_activity(misbehave, input=case.removeprefix("activity_"))
    else:
        yield ctx.call_activity(echo, input=1)


@wfr.workflow(name="hard_bad")
def bad(ctx: DaprWorkflowContext, case: str):
    """Misbehaves as ``case`` says; the output cases misbehave in their return value."""
    yield from _bad_step(ctx, case)
    if case == "output_bigint":
        return -(2**63) - 1
    if case == "output_surrogate":
        return {"\udc80": 1}
    if case == "output_deep":
        return deep(5000)
    return "unreachable"
