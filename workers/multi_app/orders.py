"""The orders application: its workflow reserves stock through the inventory app, has the inventory
app restock what is short (a child workflow running in the inventory pool), then bills locally.

Run its pool with ``orchestrator worker workers.multi_app.orders --app-id orders``; the order waits
(status RUNNING, the call visible in ``client.get_pending_calls``) until an inventory pool runs.
"""

from __future__ import annotations

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime

wfr = WorkflowRuntime(app_id="orders")
celery_app = wfr.celery_app

PRICES = {"apple": 2, "pear": 3, "plum": 5}


@wfr.activity(name="bill_customer")
def bill_customer(ctx: WorkflowActivityContext, lines: list) -> dict:
    return {"amount": sum(PRICES.get(line["sku"], 0) * line["qty"] for line in lines),
            "invoice": f"inv-{ctx.workflow_id}"}


@wfr.workflow(name="fulfil_order")
def fulfil_order(ctx: DaprWorkflowContext, order: dict):
    reservation = yield ctx.call_activity("reserve_stock", input=order, app_id="inventory")
    restocked = None
    if reservation["short"]:
        ctx.set_custom_status({"stage": "restocking", "short": reservation["short"]})
        restocked = yield ctx.call_child_workflow("restock", input=reservation["short"], app_id="inventory")
    bill = yield ctx.call_activity(bill_customer, input=order["lines"])
    return {"reserved": reservation["reserved"], "backordered": reservation["short"],
            "restock": restocked, "bill": bill}
