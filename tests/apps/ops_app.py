"""Workflows for the operations tests (CLI, HTTP API, Procfile), run by real worker pools."""

from __future__ import annotations

import time

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime

wfr = WorkflowRuntime()
celery_app = wfr.celery_app


@wfr.activity(name="greet")
def greet(ctx: WorkflowActivityContext, who: str) -> str:
    return f"hello {who}"


@wfr.activity(name="nap")
def nap(ctx: WorkflowActivityContext, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@wfr.activity(name="refuse")
def refuse(ctx: WorkflowActivityContext, why: str) -> None:
    raise PermissionError(why)


@wfr.workflow(name="hello")
def hello(ctx: DaprWorkflowContext, who: str):
    return (yield ctx.call_activity(greet, input=who))


@wfr.workflow(name="approval")
def approval(ctx: DaprWorkflowContext, order: dict):
    """Waits for an "approve" event; its data becomes part of the output."""
    ctx.set_custom_status({"waiting_for": "approve"})
    decision = yield ctx.wait_for_external_event("approve")
    greeting = yield ctx.call_activity(greet, input=decision.get("by", "nobody") if isinstance(decision, dict) else "?")
    return {"order": order, "decision": decision, "greeting": greeting}


@wfr.workflow(name="naps")
def naps(ctx: DaprWorkflowContext, n: int):
    """n sequential short activities: a workflow that takes a little while, step by step."""
    total = 0.0
    for _ in range(n):
        total += yield ctx.call_activity(nap, input=0.2)
    return round(total, 1)


@wfr.workflow(name="doomed")
def doomed(ctx: DaprWorkflowContext, why: str):
    yield ctx.call_activity(refuse, input=why)
