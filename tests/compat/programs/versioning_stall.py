# Named workflow versions in the style of the Dapr SDK's versioning example: an instance that started on
# version 1 stalls while only version 2 is served, and resumes when a pool with version 1 starts.
# Only the import line differs from Dapr code.
import sys
import time

import orchestrator as wf

wfr = None
print_activity = None


def new_wfr():
    global wfr, print_activity
    if wfr is not None:
        wfr.shutdown()
    wfr = wf.WorkflowRuntime()

    def print_activity(ctx, input):
        print(input, flush=True)
        return input

    wfr.register_activity(print_activity, name='print_activity')


def wait_until(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f'timed out waiting for {what}')
        time.sleep(0.1)


def part1(client):
    new_wfr()

    @wfr.versioned_workflow(name='stall_workflow', is_latest=True)
    def version1_workflow(ctx: wf.DaprWorkflowContext):
        yield ctx.call_activity(print_activity, input='Received workflow call for version1')
        yield ctx.wait_for_external_event(name='event')
        yield ctx.call_activity(print_activity, input='Finished stalled version1 workflow')
        return 1

    wfr.start()
    instance_id = client.schedule_new_workflow(workflow=version1_workflow, instance_id='stall-1')
    wait_until(lambda: any(e['kind'] == 'TaskCompleted' for e in client.get_workflow_history(instance_id)),
               'version 1 to start')
    new_wfr()  # a second runtime in this process, serving version 2 only

    @wfr.versioned_workflow(name='stall_workflow', is_latest=True)
    def version2_workflow(ctx: wf.DaprWorkflowContext):
        yield ctx.call_activity(print_activity, input='Received workflow call for version2')
        yield ctx.wait_for_external_event(name='event')
        yield ctx.call_activity(print_activity, input='Finished version2 workflow')
        return 2

    wfr.start()
    client.raise_workflow_event(instance_id, event_name='event')
    wait_until(lambda: client.get_workflow_state(instance_id).runtime_status == wf.WorkflowStatus.STALLED, 'STALLED')
    print('Workflow is stalled', flush=True)
    fresh = client.schedule_new_workflow(workflow=version2_workflow)
    client.raise_workflow_event(fresh, event_name='event')
    state = client.wait_for_workflow_completion(fresh, timeout_in_seconds=60)
    print(f'new instance ran version {state.serialized_output}', flush=True)
    wfr.shutdown()


def part2(client):
    new_wfr()

    @wfr.versioned_workflow(name='stall_workflow', is_latest=False)
    def version1_workflow(ctx: wf.DaprWorkflowContext):
        yield ctx.call_activity(print_activity, input='Received workflow call for version1')
        yield ctx.wait_for_external_event(name='event')
        yield ctx.call_activity(print_activity, input='Finished stalled version1 workflow')
        return 1

    @wfr.versioned_workflow(name='stall_workflow', is_latest=True)
    def version2_workflow(ctx: wf.DaprWorkflowContext):
        yield ctx.call_activity(print_activity, input='Received workflow call for version2')
        yield ctx.wait_for_external_event(name='event')
        yield ctx.call_activity(print_activity, input='Finished version2 workflow')
        return 2

    wfr.start()
    state = client.wait_for_workflow_completion('stall-1', timeout_in_seconds=120)
    print(f'stalled instance resumed: {state.runtime_status.name} output {state.serialized_output}', flush=True)
    wfr.shutdown()


if __name__ == '__main__':
    client = wf.DaprWorkflowClient()
    part1(client) if sys.argv[1] == 'part1' else part2(client)
