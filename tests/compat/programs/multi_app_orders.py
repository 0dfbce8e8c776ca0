# The calling app of a multi-app workflow (Dapr's cross-app1 style): activities and a child workflow in
# other apps by name and app_id, with a retry policy, and failures reported across apps.
from datetime import timedelta

import orchestrator as wf

wfr = wf.WorkflowRuntime()
retry = wf.RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=4)


@wfr.workflow(name='place_order')
def place_order(ctx: wf.DaprWorkflowContext, order: dict):
    try:
        stock = yield ctx.call_activity('reserve_stock', input=order, app_id='app2', retry_policy=retry)
    except wf.TaskFailedError as err:
        return {'id': order['id'], 'failed': str(err)}
    shipment = yield ctx.call_child_workflow('ship_order', input=order, app_id='app3')
    return {'id': order['id'], 'stock': stock, 'shipment': shipment}


@wfr.workflow(name='unchecked_order')
def unchecked_order(ctx: wf.DaprWorkflowContext, order: dict):
    yield ctx.call_activity('reserve_stock', input=order, app_id='app2')
    return 'unreachable'


if __name__ == '__main__':
    wfr.start()
    client = wf.DaprWorkflowClient()
    runs = {
        'ok': client.schedule_new_workflow(workflow=place_order, input={'id': 'A', 'quantity': 2, 'flaky': True}),
        'refused': client.schedule_new_workflow(workflow=place_order, input={'id': 'B', 'quantity': 50}),
        'unhandled': client.schedule_new_workflow(workflow=unchecked_order, input={'id': 'C', 'quantity': 99}),
    }
    for label, instance_id in runs.items():
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=90)
        print(f'{label}: {state.runtime_status.name} {state.serialized_output}', flush=True)
        if state.failure_details is not None:
            f = state.failure_details
            print(f'{label} failure: {f.error_type} | {f.message}', flush=True)
            try:
                state.raise_if_failed()
            except Exception as err:
                print(f'{label} raise_if_failed: {type(err).__name__}', flush=True)
    wfr.shutdown()
