# History propagation in the style of the Dapr SDK's history_propagation example (its main branch): a
# parent hands its history to a child workflow (OWN_HISTORY) and to an activity (LINEAGE), which read it.
# Only the import line differs from Dapr code.
import json

import orchestrator as wf

wfr = wf.WorkflowRuntime()


@wfr.activity(name='validate_merchant')
def validate_merchant(ctx: wf.WorkflowActivityContext, merchant_id: str) -> dict:
    return {'merchant_id': merchant_id, 'valid': True}


@wfr.activity(name='log_summary')
def log_summary(ctx: wf.WorkflowActivityContext, _: None) -> str:
    history = ctx.get_propagated_history()
    if history is None:
        return 'no-history'
    parent = history.get_workflows()[-1]
    validate = parent.get_last_activity_by_name('validate_merchant')
    child = parent.get_child_workflow_by_name('process_payment')
    print(f'log_summary: scope={history.scope.name} apps={history.get_app_ids()} parent={parent.name} '
          f'validate completed={validate.completed} output={validate.output} child completed={child.completed}',
          flush=True)
    try:
        parent.get_activity_by_name('never_called')
    except wf.PropagationNotFoundError:
        print('log_summary: never_called not found', flush=True)
    return 'logged'


@wfr.workflow(name='process_payment')
def process_payment(ctx: wf.DaprWorkflowContext, _: None):
    history = ctx.get_propagated_history()
    if history is None:
        return 'no-history'
    validate = history.get_workflows()[-1].get_last_activity_by_name('validate_merchant')
    if not validate.completed:
        return 'parent-incomplete'
    merchant = json.loads(validate.output or '{}')
    yield ctx.create_timer(ctx.current_utc_datetime)  # replayed: the propagated history reads the same
    return f'paid {merchant["merchant_id"]}'


@wfr.workflow(name='merchant_checkout')
def merchant_checkout(ctx: wf.DaprWorkflowContext, merchant_id: str):
    yield ctx.call_activity(validate_merchant, input=merchant_id)
    child_result = yield ctx.call_child_workflow(process_payment, input=None,
                                                 propagation=wf.PropagationScope.OWN_HISTORY)
    audit = yield ctx.call_activity(log_summary, input=None, propagation=wf.PropagationScope.LINEAGE)
    unpropagated = yield ctx.call_child_workflow(process_payment, input=None)
    return {'child': child_result, 'audit': audit, 'without': unpropagated}


if __name__ == '__main__':
    wfr.start()
    wf_client = wf.DaprWorkflowClient()
    instance_id = wf_client.schedule_new_workflow(workflow=merchant_checkout, input='merchant-42')
    state = wf_client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    print(f'workflow completed: status={state.runtime_status.name} output={state.serialized_output}', flush=True)
    wfr.shutdown()
