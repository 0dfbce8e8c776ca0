"""The orders application of the multi-app tests: run with ``--app-id orders``.

Its workflow calls an activity and a child workflow that only the inventory app registers, routed
with ``app_id="inventory"``; the final step (``charge``) runs back in the orders pool.
"""

from __future__ import annotations

import os

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime

wfr = WorkflowRuntime()


@wfr.activity(name="charge")
def charge(ctx: WorkflowActivityContext, amount: int) -> dict:
    return {"charged": amount, "app": os.environ.get("ORCH_APP_ID")}


@wfr.workflow(name="place_order")
def place_order(ctx: DaprWorkflowContext, order: dict):
    reservation = yield ctx.call_activity("reserve", input=order, app_id="inventory")
    restocked = yield ctx.call_child_workflow("restock", input=order, app_id="inventory")
    payment = yield ctx.call_activity(charge, input=order["qty"] * 10)
    return {"reservation": reservation, "restock": restocked, "payment": payment}


@wfr.workflow(name="misrouted_call")
def misrouted_call(ctx: DaprWorkflowContext, _):
    """Names an activity the inventory app does not register."""
    return (yield ctx.call_activity("charge", input=1, app_id="inventory"))
