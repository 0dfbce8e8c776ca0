# The other apps of a multi-app workflow, in the style of the Dapr SDK's cross-app examples: each is a
# separate program with its own app id (Dapr's `dapr run --app-id`, here ORCH_APP_ID), serving until stopped.
import sys
import time

import orchestrator as wf

wfr = wf.WorkflowRuntime()
app = sys.argv[1]

if app == 'app2':
    calls = {'n': 0}

    @wfr.activity(name='reserve_stock')
    def reserve_stock(ctx: wf.WorkflowActivityContext, order: dict) -> dict:
        calls['n'] += 1
        if order.get('flaky') and calls['n'] < 3:
            raise ConnectionError(f'stock service timeout (call {calls["n"]})')
        if order['quantity'] > 10:
            raise ValueError(f'only 10 in stock, asked {order["quantity"]}')
        print(f'app2 reserved {order["quantity"]} after {calls["n"]} calls', flush=True)
        return {'reserved': order['quantity']}

if app == 'app3':
    @wfr.workflow(name='ship_order')
    def ship_order(ctx: wf.DaprWorkflowContext, order: dict):
        label = yield ctx.call_activity(print_label, input=order)
        return {'shipped': order['id'], 'label': label}

    @wfr.activity(name='print_label')
    def print_label(ctx: wf.WorkflowActivityContext, order: dict) -> str:
        return f'LBL-{order["id"]}'

if __name__ == '__main__':
    wfr.start()
    print(f'{app} ready', flush=True)
    while True:
        time.sleep(1)
