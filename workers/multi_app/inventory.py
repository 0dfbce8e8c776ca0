"""The inventory application: stock reservations and supplier restocking.

Run its pool with ``orchestrator worker workers.multi_app.inventory --app-id inventory``. Other apps
call ``reserve_stock`` and the ``restock`` workflow with ``app_id="inventory"``.
"""

from __future__ import annotations

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_all

wfr = WorkflowRuntime(app_id="inventory")
celery_app = wfr.celery_app  # for plain `celery -A workers.multi_app.inventory:celery_app worker`

# A stand-in for the inventory database: units on hand per SKU.
STOCK = {"apple": 10, "pear": 0, "plum": 3}


@wfr.activity(name="reserve_stock")
def reserve_stock(ctx: WorkflowActivityContext, order: dict) -> dict:
    """Reserve what is on hand; report the shortfall per line."""
    reserved, short = [], []
    for line in order["lines"]:
        on_hand = STOCK.get(line["sku"], 0)
        take = min(on_hand, line["qty"])
        if take:
            reserved.append({"sku": line["sku"], "qty": take})
        if take < line["qty"]:
            short.append({"sku": line["sku"], "qty": line["qty"] - take})
    return {"reserved": reserved, "short": short}


@wfr.activity(name="order_from_supplier")
def order_from_supplier(ctx: WorkflowActivityContext, line: dict) -> dict:
    return {"sku": line["sku"], "qty": line["qty"], "purchase_order": f"po-{ctx.workflow_id}-{line['sku']}"}


@wfr.workflow(name="restock")
def restock(ctx: DaprWorkflowContext, lines: list):
    """Order every short line from the supplier, in parallel."""
    orders = yield when_all([ctx.call_activity(order_from_supplier, input=line) for line in lines])
    return {"purchase_orders": orders}
