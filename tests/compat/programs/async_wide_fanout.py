# A wide fan-out of async def activities on a one-thread pool: the attempts a message carries run at once
# on its event loop (as Dapr's worker runs async activities), not one after another.
import asyncio
import time

from orchestrator import DaprWorkflowClient, DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_all

wfr = WorkflowRuntime(maximum_concurrent_activity_work_items=1)
spans = []


@wfr.activity(name='ping')
async def ping(ctx: WorkflowActivityContext, n: int) -> int:
    started = time.monotonic()
    await asyncio.sleep(0.02)
    spans.append((started, time.monotonic()))
    return n


@wfr.workflow(name='ping_all')
def ping_all(ctx: DaprWorkflowContext, count: int):
    results = yield when_all([ctx.call_activity(ping, input=i) for i in range(count)])
    return sum(results)


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
    instance_id = client.schedule_new_workflow(workflow=ping_all, input=400)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=120)
    print(f'sum {state.serialized_output}; ran {len(spans)}; at most {most_at_once()} at once on one thread', flush=True)
    wfr.shutdown()
