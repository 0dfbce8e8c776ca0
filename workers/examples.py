"""Example app: the seed's patterns in their smallest form (chaining, fan-out/fan-in, failures).

Run a pool for it with ``orchestrator worker workers.examples``; ``orchestrator demo`` starts one
and runs ``order_pipeline`` end to end.
"""

from __future__ import annotations

from orchestrator import DaprWorkflowContext, TaskFailedError, WorkflowActivityContext, WorkflowRuntime, when_all

wfr = WorkflowRuntime()
celery_app = wfr.celery_app  # for plain `celery -A module:celery_app worker`


@wfr.activity(name="price_item")
def price_item(ctx: WorkflowActivityContext, item: dict) -> float:
    return round(item["qty"] * item["unit_price"], 2)


@wfr.activity(name="apply_discount")
def apply_discount(ctx: WorkflowActivityContext, total: float) -> float:
    return round(total * 0.9, 2) if total >= 100 else total


@wfr.activity(name="charge")
def charge(ctx: WorkflowActivityContext, amount: float) -> dict:
    if amount <= 0:
        raise ValueError(f"cannot charge {amount}")
    return {"charged": amount, "receipt": f"r-{ctx.workflow_id}"}


@wfr.workflow(name="order_pipeline")
def order_pipeline(ctx: DaprWorkflowContext, order: dict):
    """Fan out to price each line, fan in to a total, then chain discount and charge."""
    prices = yield when_all([ctx.call_activity(price_item, input=item) for item in order["items"]])
    ctx.set_custom_status({"stage": "priced", "lines": len(prices)})
    total = yield ctx.call_activity(apply_discount, input=round(sum(prices), 2))
    try:
        payment = yield ctx.call_activity(charge, input=total)
    except TaskFailedError as err:
        return {"status": "rejected", "reason": err.details.message}
    return {"status": "paid", "total": total, **payment}


@wfr.activity(name="increment")
def increment(ctx: WorkflowActivityContext, n: int) -> int:
    return n + 1


@wfr.workflow(name="count_to")
def count_to(ctx: DaprWorkflowContext, n: int):
    """Task chaining: n sequential activities."""
    value = 0
    for _ in range(n):
        value = yield ctx.call_activity(increment, input=value)
    return value
