# The WorkflowRuntime surface Dapr code relies on: constructor options, decorators and alternate_name,
# duplicate registration errors, registering after start(), wait_for_worker_ready, several runtimes in
# one process, enqueueing before a worker exists. Only the import line differs from Dapr code.
import orchestrator as wf
from orchestrator import alternate_name

try:
    wf.WorkflowRuntime(maximum_concurent_activity_work_items=4)  # misspelt
except TypeError as err:
    print(f'TypeError: {err}', flush=True)

client = wf.DaprWorkflowClient()
# Enqueued before any worker serving it exists: it waits PENDING, then runs once one starts.
early = client.schedule_new_workflow('late_bloomer', input=3)
print(f'before any worker: {client.get_workflow_state(early).runtime_status.name}', flush=True)

first = wf.WorkflowRuntime(host='localhost', port='50001', maximum_concurrent_activity_work_items=4,
                           maximum_concurrent_orchestration_work_items=2)
print(f'pool size: {first.settings.concurrency}', flush=True)


@first.activity
@alternate_name('shout')
def loud(ctx, text: str) -> str:
    return text.upper() + ' (first runtime)'


@first.workflow(name='greet')
def greet(ctx: wf.DaprWorkflowContext, name: str):
    return (yield ctx.call_activity(loud, input=f'hello {name}'))


print(f'decorated names: {greet._dapr_alternate_name} {loud._dapr_alternate_name}', flush=True)
try:
    first.register_workflow(greet.__wrapped__)
except ValueError as err:
    print(f'ValueError: {err}', flush=True)

first.start()
print(f'ready: {first.wait_for_worker_ready(timeout=10)}', flush=True)
done = client.wait_for_workflow_completion(client.schedule_new_workflow(greet, input='ada'), timeout_in_seconds=30)
print(f'first: {done.serialized_output}', flush=True)


def late_bloomer(ctx: wf.DaprWorkflowContext, n: int):
    return n * 2


first.register_workflow(late_bloomer)  # registered on a running runtime
print(f'late: {client.wait_for_workflow_completion(early, timeout_in_seconds=60).serialized_output}', flush=True)
first.shutdown()

second = wf.WorkflowRuntime()


@second.activity(name='shout')
def softly(ctx, text: str) -> str:
    return text.lower() + ' (second runtime)'


@second.workflow(name='greet')
def greet_again(ctx: wf.DaprWorkflowContext, name: str):
    return (yield ctx.call_activity('shout', input=f'HELLO {name}'))


second.start()
done = client.wait_for_workflow_completion(client.schedule_new_workflow(greet_again, input='BOB'), timeout_in_seconds=30)
print(f'second: {done.serialized_output}', flush=True)
second.shutdown()
client.close()
