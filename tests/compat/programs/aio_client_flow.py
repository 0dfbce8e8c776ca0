# An async-client program in the style of the Dapr SDK's simple_aio_client example: schedule, pause,
# resume, raise an event, wait, purge, all awaited. Only the import lines differ from Dapr code.
import asyncio
from datetime import timedelta

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, WorkflowStatus
from orchestrator.aio import DaprWorkflowClient

wfr = WorkflowRuntime()
counter = 0


@wfr.workflow(name='hello_world_wf')
def hello_world_wf(ctx: DaprWorkflowContext, wf_input):
    yield ctx.call_activity(hello_act, input=1)
    yield ctx.call_activity(hello_act, input=10)
    approval = yield ctx.wait_for_external_event('approval')
    yield ctx.create_timer(timedelta(milliseconds=200))
    yield ctx.call_activity(hello_act, input=100)
    return {'counter': counter, 'approved_by': approval['by']}


@wfr.activity(name='hello_act')
def hello_act(ctx: WorkflowActivityContext, wf_input):
    global counter
    counter += wf_input
    print(f'New counter value is: {counter}!', flush=True)
    return counter


async def main():
    wfr.start()
    client = DaprWorkflowClient()
    instance_id = await client.schedule_new_workflow(workflow=hello_world_wf, input='hi', instance_id='aio-1')
    await client.wait_for_workflow_start(instance_id, timeout_in_seconds=30)
    await client.pause_workflow(instance_id)
    state = await client.get_workflow_state(instance_id)
    print(f'after pause: {state.runtime_status.name}', flush=True)
    await client.raise_workflow_event(instance_id, 'approval', data={'by': 'grace'})
    state = await client.get_workflow_state(instance_id)
    print(f'suspended with the event queued: {state.runtime_status.name}', flush=True)
    await client.resume_workflow(instance_id)
    state = await client.get_workflow_state(instance_id)
    print(f'after resume: {state.runtime_status.name}', flush=True)
    done = await client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    print(f'completed: {done.runtime_status == WorkflowStatus.COMPLETED} output={done.serialized_output}', flush=True)
    # Dapr's default: raising to a finished instance is discarded, not an error.
    await client.raise_workflow_event(instance_id, 'approval', data={'by': 'late'})
    await client.purge_workflow(instance_id)
    print(f'purged: {await client.get_workflow_state(instance_id) is None}', flush=True)
    await client.close()
    wfr.shutdown()


if __name__ == '__main__':
    asyncio.run(main())
