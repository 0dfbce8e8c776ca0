# An eternal monitor in the style of the Dapr SDK's monitor example (continue_as_new with a timer), run
# twice under one instance id, as Dapr allows once the first run finished; and a counter that carries
# its unprocessed events across continue_as_new(save_events=True). Only the import line differs.
from dataclasses import dataclass
from datetime import timedelta

import orchestrator as wf

wfr = wf.WorkflowRuntime()


@dataclass
class JobStatus:
    job_id: str
    is_healthy: bool


checks = {'n': 0}


@wfr.workflow(name='status_monitor')
def status_monitor_workflow(ctx: wf.DaprWorkflowContext, job: JobStatus):
    status = yield ctx.call_activity(check_status, input=job)
    if status == 'unhealthy':
        job.is_healthy = False
        ctx.set_custom_status('unhealthy')
        return f'{job.job_id} unhealthy after checks'
    yield ctx.create_timer(fire_at=ctx.current_utc_datetime + timedelta(milliseconds=100))
    ctx.continue_as_new(job)


@wfr.activity
def check_status(ctx, job: JobStatus) -> str:
    checks['n'] += 1
    return 'unhealthy' if checks['n'] % 3 == 0 else 'healthy'


@wfr.workflow(name='collector')
def collector(ctx: wf.DaprWorkflowContext, seen: list):
    value = yield ctx.wait_for_external_event('n')
    seen = seen + [value]
    if len(seen) == 5:
        return seen
    ctx.continue_as_new(seen, save_events=True)


if __name__ == '__main__':
    wfr.start()
    client = wf.DaprWorkflowClient()
    job = JobStatus(job_id='job1', is_healthy=True)
    for run in (1, 2):
        instance_id = client.schedule_new_workflow(workflow=status_monitor_workflow, input=job, instance_id=job.job_id)
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
        print(f'run {run}: {state.runtime_status.name} {state.serialized_output} {state.serialized_custom_status}',
              flush=True)
    print(f'checks: {checks["n"]}', flush=True)
    collected = client.schedule_new_workflow(workflow=collector, input=[], instance_id='collector-1')
    for n in range(1, 6):
        client.raise_workflow_event(collected, 'n', data=n)
    state = client.wait_for_workflow_completion(collected, timeout_in_seconds=60)
    print(f'collected in order: {state.serialized_output}', flush=True)
    wfr.shutdown()
