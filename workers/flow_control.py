"""Example app: flow control (docs/flow-control.md).

A pool: ``orchestrator worker workers.flow_control`` (run two to see the limits hold across pools).
Then ``python -m workers.flow_control`` starts a burst of orders and a mailing:

* ``fulfil_order``: at most 2 orders per customer run at once, 20 in all; other orders wait
  (PENDING, with the reason on the dashboard) and start round-robin between customers.
* ``charge_card``: at most 100 calls per minute to the payment provider, across every pool.
* ``send_newsletter`` batches run at priority 9: orders (priority 0, the default) go first.
* A start with a ``dedup_id`` that a live order already has returns that order instead of a second.
"""

from __future__ import annotations

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowClient, WorkflowRuntime, when_all

wfr = WorkflowRuntime()
celery_app = wfr.celery_app  # for plain `celery -A module:celery_app worker`


@wfr.activity(name="reserve_stock")
def reserve_stock(ctx: WorkflowActivityContext, order: dict) -> str:
    return f"reserved {order['sku']}"


@wfr.activity(name="charge_card", rate=100, per=60)
def charge_card(ctx: WorkflowActivityContext, order: dict) -> dict:
    return {"charged": order["amount"], "customer": order["customer"]}


@wfr.activity(name="send_email")
def send_email(ctx: WorkflowActivityContext, address: str) -> str:
    return f"sent to {address}"


@wfr.workflow(name="fulfil_order", concurrency=20, concurrency_key=lambda order: order["customer"],
              key_concurrency=2)
def fulfil_order(ctx: DaprWorkflowContext, order: dict):
    reserved = yield ctx.call_activity(reserve_stock, input=order)
    receipt = yield ctx.call_activity(charge_card, input=order)
    return {"reserved": reserved, "receipt": receipt}


@wfr.workflow(name="send_newsletter")
def send_newsletter(ctx: DaprWorkflowContext, addresses: list):
    sent = yield when_all([ctx.call_activity(send_email, input=a) for a in addresses])
    return len(sent)


def start_burst(client: WorkflowClient, customers: int = 5, orders_each: int = 4) -> list[str]:
    ids = [client.schedule_new_workflow(send_newsletter, input=[f"user{i}@example.com" for i in range(50)],
                                        priority=9)]
    for n in range(orders_each):
        for c in range(customers):
            order = {"customer": f"c{c}", "sku": f"sku-{n}", "amount": 10 + n}
            ids.append(client.schedule_new_workflow(fulfil_order, input=order, dedup_id=f"c{c}-order-{n}"))
    # The shop retries the first order: same dedup id, so the same instance while it has not finished.
    retried = client.schedule_new_workflow(fulfil_order, input={"customer": "c0", "sku": "sku-0", "amount": 10},
                                           dedup_id="c0-order-0")
    if retried != ids[1]:  # it had finished already: this is a new order
        ids.append(retried)
    return ids


if __name__ == "__main__":
    c = WorkflowClient()
    started = start_burst(c)
    for instance_id in started:
        state = c.wait_for_workflow_completion(instance_id, timeout_in_seconds=300)
        print(instance_id, state.runtime_status.name if state else "?")
    for scope in c.flow_control_status():
        print(scope)
