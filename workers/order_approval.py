"""The seed's order-approval workflow, run as is: only its import line differs from the Dapr example.

Orders under $1000 are auto-approved; larger ones wait up to 7 days for a ``human_approval`` event,
racing a durable timer with ``when_any``. Every activity returns what it was given, so the history
(``orchestrator``'s ``get_workflow_history``) shows which one ran and with which input.

Run it (see README, "Order approval example")::

    orchestrator worker workers.order_approval                 # a pool
    python -m workers.order_approval start 5000 --id order-1   # an order that needs approval
    python -m workers.order_approval approve order-1 --by alice
    python -m workers.order_approval status order-1
"""

from __future__ import annotations

import json
from datetime import timedelta

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_any

wfr = WorkflowRuntime()
celery_app = wfr.celery_app  # for plain `celery -A workers.order_approval:celery_app worker`


@wfr.activity(name="auto_approve")
def auto_approve_activity(ctx: WorkflowActivityContext, order: dict) -> dict:
    return {"decision": "auto-approved", "order": order}


@wfr.activity(name="process_approval")
def process_approval_activity(ctx: WorkflowActivityContext, approval: dict) -> dict:
    return {"decision": "processed", "approval": approval}


@wfr.activity(name="handle_timeout")
def handle_timeout_activity(ctx: WorkflowActivityContext, order: dict) -> dict:
    return {"decision": "timed out", "order": order}


# --- the seed's workflow, unchanged --------------------------------------------------------------
@wfr.workflow(name="request_escalation")
def request_escalation_workflow(ctx: DaprWorkflowContext, order_str: str):
    order = json.loads(order_str) if isinstance(order_str, str) else order_str
    amount = order.get("amount", 0)
    # Auto-approve orders under $1000
    if amount < 1000:
        yield ctx.call_activity(auto_approve_activity, input=order)
        return
    # Orders $1000+ require human approval (7 days max)
    approval_event = ctx.wait_for_external_event("human_approval")
    timeout = ctx.create_timer(timedelta(days=7))
    winner = yield when_any([approval_event, timeout])
    # Handle approval event or timeout
    if winner == timeout:
        yield ctx.call_activity(handle_timeout_activity, input=order)
        return
    approval_result = approval_event.get_result()
    yield ctx.call_activity(process_approval_activity, input=approval_result)
# -------------------------------------------------------------------------------------------------


def activities_run(history: list[dict]) -> list[dict]:
    """The activities an instance ran, from its history: name, input and result of each."""
    scheduled = {e["seq"]: e for e in history if e["kind"] == "TaskScheduled"}
    results = {e["seq"]: e.get("result") for e in history if e["kind"] == "TaskCompleted"}
    return [{"activity": e["name"], "input": e["input"], "result": results.get(seq)}
            for seq, e in scheduled.items()]


def _main(argv: list[str] | None = None) -> int:
    """A tiny driver for the README: start an order, approve it, show what ran."""
    import argparse

    from orchestrator import DaprWorkflowClient

    parser = argparse.ArgumentParser(prog="python -m workers.order_approval")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start request_escalation for an order of AMOUNT dollars")
    start.add_argument("amount", type=float)
    start.add_argument("--id", dest="instance_id", default=None, help="instance id (default: random)")
    approve = sub.add_parser("approve", help="raise human_approval to instance ID")
    approve.add_argument("instance_id")
    approve.add_argument("--by", default="a human", help="the approver's name (sent as event data)")
    status = sub.add_parser("status", help="show status and the activities instance ID ran")
    status.add_argument("instance_id")
    status.add_argument("--wait", type=float, default=0, help="seconds to wait for completion")
    args = parser.parse_args(argv)

    client = DaprWorkflowClient()
    if args.command == "start":
        amount = int(args.amount) if args.amount.is_integer() else args.amount
        order = {"id": args.instance_id or "order", "amount": amount}
        print(client.schedule_new_workflow(request_escalation_workflow, input=json.dumps(order),
                                           instance_id=args.instance_id))
    elif args.command == "approve":
        client.raise_workflow_event(args.instance_id, "human_approval",
                                    data={"approved": True, "approver": args.by})
        print(f"raised human_approval to {args.instance_id}")
    else:
        if args.wait:
            client.wait_for_workflow_completion(args.instance_id, timeout_in_seconds=args.wait)
        state = client.get_workflow_state(args.instance_id)
        if state is None:
            print(f"no instance {args.instance_id!r}")
            return 1
        ran = activities_run(client.get_workflow_history(args.instance_id))
        print(json.dumps({"status": state.runtime_status.name, "activities": ran}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
