# An order workflow in the style of the Dapr Python SDK's examples: a dataclass input that reaches the
# workflow and the activities as an object with attributes. Only the import line differs from Dapr code.
from dataclasses import dataclass
from datetime import timedelta

from orchestrator import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    RetryPolicy,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)

wfr = WorkflowRuntime()


@dataclass
class Order:
    order_id: str
    item: str
    quantity: int
    cost: float


@dataclass
class Receipt:
    order_id: str
    total: float
    note: str


retry = RetryPolicy(first_retry_interval=timedelta(seconds=0), max_number_of_attempts=3,
                    max_retry_interval=timedelta(seconds=0))
attempts = {'reserve': 0}


@wfr.workflow(name='order_processing')
def order_processing(ctx: DaprWorkflowContext, order: Order):
    if not ctx.is_replaying:
        print(f'workflow got {order.order_id}: {order.quantity} x {order.item} at {order.cost}', flush=True)
    reserved = yield ctx.call_activity(reserve_inventory, input=order, retry_policy=retry)
    receipt = yield ctx.call_activity(charge, input={'order': order, 'reserved': reserved})
    ctx.set_custom_status('charged')
    return receipt


@wfr.activity(name='reserve_inventory')
def reserve_inventory(ctx: WorkflowActivityContext, order) -> dict:
    attempts['reserve'] += 1
    if attempts['reserve'] == 1:
        raise ConnectionError('inventory service busy')
    print(f'activity reserve_inventory of {ctx.workflow_id} task {ctx.task_id}: {order.item} x {order.quantity}',
          flush=True)
    return {'warehouse': 'north', 'left': 10 - order.quantity}


@wfr.activity(name='charge')
def charge(ctx: WorkflowActivityContext, request) -> Receipt:
    order = request['order']  # a dataclass nested in a dict arrives as an object too
    total = order.cost * order.quantity
    return Receipt(order_id=order.order_id, total=total, note=f"from {request['reserved']['warehouse']}")


if __name__ == '__main__':
    wfr.start()
    client = DaprWorkflowClient()
    order = Order(order_id='O-1', item='lamp', quantity=3, cost=12.5)
    instance_id = client.schedule_new_workflow(workflow=order_processing, input=order, instance_id='order-O-1')
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state
    receipt = state.output
    print(f'receipt {receipt.order_id} total={receipt.total} note={receipt.note}', flush=True)
    print(f'custom status: {state.serialized_custom_status}', flush=True)
    print(f'created_at naive: {state.created_at.tzinfo is None}', flush=True)
    print(f'state json keys: {sorted(state.to_json())}', flush=True)
    wfr.shutdown()
