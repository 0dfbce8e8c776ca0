# async def activities fanned out with when_all, in the style of the Dapr SDK's async_activities example.
# Only the import line differs from Dapr code.
import asyncio
import time

from orchestrator import DaprWorkflowClient, DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_all

wfr = WorkflowRuntime(maximum_concurrent_activity_work_items=8)
spans = []


@wfr.activity(name='fetch_price')
async def fetch_price(ctx: WorkflowActivityContext, sku: str) -> dict:
    started = time.monotonic()
    await asyncio.sleep(0.3)  # an awaited I/O call
    spans.append((started, time.monotonic()))
    return {'sku': sku, 'price': len(sku) * 10}


@wfr.workflow(name='price_all')
def price_all(ctx: DaprWorkflowContext, skus: list):
    prices = yield when_all([ctx.call_activity(fetch_price, input=sku) for sku in skus])
    return {'total': sum(p['price'] for p in prices), 'skus': [p['sku'] for p in prices]}


def most_at_once() -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


if __name__ == '__main__':
    wfr.start()
    client = DaprWorkflowClient()
    skus = [f'sku-{"x" * i}' for i in range(8)]
    instance_id = client.schedule_new_workflow(workflow=price_all, input=skus)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    print(f'output {state.serialized_output}', flush=True)
    print(f'activities ran: {len(spans)}; at most {most_at_once()} at once', flush=True)
    wfr.shutdown()
