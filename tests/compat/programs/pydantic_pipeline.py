# A Pydantic model pipeline in the style of the Dapr SDK's pydantic example: parameters annotated with a
# model receive that model; models returned travel as plain JSON. Only the import line differs from Dapr.
from pydantic import BaseModel

from orchestrator import DaprWorkflowClient, DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime

wfr = WorkflowRuntime()


class Applicant(BaseModel):
    name: str
    income: float
    debts: list[float]


class Score(BaseModel):
    name: str
    ratio: float
    approved: bool


@wfr.workflow(name='loan_pipeline')
def loan_pipeline(ctx: DaprWorkflowContext, applicant: Applicant):
    assert isinstance(applicant, Applicant), type(applicant)
    raw = yield ctx.call_activity(score, input=applicant)
    result = Score.model_validate(raw)  # activity results come back as plain JSON, as in Dapr
    decision = yield ctx.call_activity(decide, input=result)
    return decision


@wfr.activity(name='score')
def score(ctx: WorkflowActivityContext, applicant: Applicant) -> Score:
    print(f'score got {type(applicant).__name__} {applicant.name}', flush=True)
    ratio = sum(applicant.debts) / applicant.income
    return Score(name=applicant.name, ratio=round(ratio, 3), approved=ratio < 0.4)


@wfr.activity(name='decide')
def decide(ctx: WorkflowActivityContext, result: Score) -> Score:
    print(f'decide got {type(result).__name__} approved={result.approved}', flush=True)
    return result


if __name__ == '__main__':
    wfr.start()
    client = DaprWorkflowClient()
    instance_id = client.schedule_new_workflow(workflow=loan_pipeline,
                                               input=Applicant(name='ada', income=1000.0, debts=[100.0, 150.0]))
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    final = Score.model_validate_json(state.serialized_output)
    print(f'final {final.name} ratio={final.ratio} approved={final.approved} status={state.runtime_status.name}',
          flush=True)
    client.purge_workflow(instance_id)
    print(f'purged: {client.get_workflow_state(instance_id) is None}', flush=True)
    wfr.shutdown()
