# Workflow interceptors in the style of the Dapr SDK's interceptor examples: a client interceptor adds
# the tenant to each start, a runtime interceptor logs each workflow and activity execution, and an
# outbound interceptor carries the tenant into every activity and child workflow input (and gives a
# flaky activity a retry policy). Only the import lines differ from Dapr code.
import asyncio
import threading
from datetime import timedelta

from orchestrator import DaprWorkflowClient, DaprWorkflowContext, RetryPolicy, WorkflowActivityContext, WorkflowRuntime
from orchestrator.aio import DaprWorkflowClient as AsyncDaprWorkflowClient
from orchestrator.interceptors import (
    BaseClientInterceptor,
    BaseRuntimeInterceptor,
    BaseWorkflowOutboundInterceptor,
    CallActivityRequest,
    CallChildWorkflowRequest,
    ExecuteActivityRequest,
    ExecuteWorkflowRequest,
    ScheduleWorkflowRequest,
)

TENANT = 'acme'
tenants = {}  # workflow instance id -> its tenant, as the runtime interceptor saw it
lock = threading.Lock()


class TenantClientInterceptor(BaseClientInterceptor):
    def schedule_new_workflow(self, input: ScheduleWorkflowRequest, nxt):
        print(f'client: scheduling {input.workflow_name} for {TENANT}', flush=True)
        input.input = {**(input.input or {}), 'tenant': TENANT}
        return nxt(input)


class LoggingRuntimeInterceptor(BaseRuntimeInterceptor):
    def execute_workflow(self, input: ExecuteWorkflowRequest, nxt):
        with lock:
            tenants[input.ctx.instance_id] = input.input.get('tenant')
        if not input.ctx.is_replaying:
            print(f'runtime: workflow {input.ctx.instance_id} tenant={input.input.get("tenant")}', flush=True)
        return nxt(input)

    def execute_activity(self, input: ExecuteActivityRequest, nxt):
        result = nxt(input)
        print(f'runtime: activity task {input.ctx.task_id} of {input.ctx.workflow_id} '
              f'tenant={input.input.get("tenant")} -> {result}', flush=True)
        return result


class TenantOutboundInterceptor(BaseWorkflowOutboundInterceptor):
    def call_activity(self, input: CallActivityRequest, nxt):
        with lock:
            tenant = tenants.get(input.workflow_ctx.instance_id)
        input.input = {**(input.input or {}), 'tenant': tenant}
        if input.activity_name == 'flaky_lookup' and input.retry_policy is None:
            input.retry_policy = RetryPolicy(first_retry_interval=timedelta(milliseconds=100),
                                             max_number_of_attempts=3)
        return nxt(input)

    def call_child_workflow(self, input: CallChildWorkflowRequest, nxt):
        with lock:
            tenant = tenants.get(input.workflow_ctx.instance_id)
        input.input = {**(input.input or {}), 'tenant': tenant}
        return nxt(input)


wfr = WorkflowRuntime(runtime_interceptors=[LoggingRuntimeInterceptor()],
                      workflow_outbound_interceptors=[TenantOutboundInterceptor()])
lookups = {'n': 0}


@wfr.workflow(name='tenant_order')
def tenant_order(ctx: DaprWorkflowContext, order: dict):
    price = yield ctx.call_activity(flaky_lookup, input={'item': order['item']})
    invoice = yield ctx.call_child_workflow(invoice_wf, input={'amount': price * order['qty']})
    return {'workflow_tenant': order['tenant'], 'invoice': invoice}


@wfr.workflow(name='invoice_wf')
def invoice_wf(ctx: DaprWorkflowContext, request: dict):
    line = yield ctx.call_activity(format_invoice, input={'amount': request['amount']})
    return f'{line} (child sees tenant {request["tenant"]})'


@wfr.activity(name='flaky_lookup')
def flaky_lookup(ctx: WorkflowActivityContext, request: dict) -> int:
    lookups['n'] += 1
    if lookups['n'] == 1:
        raise ConnectionError('price service busy')  # retried only because the interceptor added a policy
    return 5 if request['tenant'] == TENANT else 0


@wfr.activity(name='format_invoice')
def format_invoice(ctx: WorkflowActivityContext, request: dict) -> str:
    return f'invoice {request["amount"]} for {request["tenant"]}'


async def start_with_the_async_client() -> str:
    client = AsyncDaprWorkflowClient(interceptors=[TenantClientInterceptor()])
    instance_id = await client.schedule_new_workflow(tenant_order, input={'item': 'pen', 'qty': 1},
                                                     instance_id='tenant-aio')
    state = await client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    return f'aio: {state.runtime_status.name} {state.serialized_output}'


if __name__ == '__main__':
    wfr.start()
    client = DaprWorkflowClient(interceptors=[TenantClientInterceptor()])
    instance_id = client.schedule_new_workflow(tenant_order, input={'item': 'lamp', 'qty': 3},
                                               instance_id='tenant-sync')
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    print(f'sync: {state.runtime_status.name} {state.serialized_output}', flush=True)
    print(f'stored input: {state.serialized_input}', flush=True)
    print(asyncio.run(start_with_the_async_client()), flush=True)
    print(f'lookups: {lookups["n"]}', flush=True)
    try:
        WorkflowRuntime(interceptors=[object()])
    except TypeError as exc:
        print(f'TypeError: {exc}', flush=True)
    wfr.shutdown()
