"""Example app: reports on durable schedules (docs/schedules.md).

A pool for it: ``orchestrator worker workers.scheduled_reports``. Then create the schedules, once,
from anywhere (the CLI, the HTTP API, or this module)::

    python -m workers.scheduled_reports          # creates them (again: replaces their spec)
    orchestrator schedule list                    # next and last runs
    orchestrator schedule trigger daily-sales     # one run now

``daily_sales`` runs every weekday at 07:30 Paris time; ``inventory_snapshot`` every 15 minutes,
skipping a run while the previous one is still going. Each nominal time starts exactly one run,
named after it (``daily-sales-20261202T063000Z``), however many pools run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowClient, WorkflowRuntime

wfr = WorkflowRuntime()
celery_app = wfr.celery_app  # for plain `celery -A module:celery_app worker`


@wfr.activity(name="sum_sales")
def sum_sales(ctx: WorkflowActivityContext, day: str) -> dict:
    return {"day": day, "orders": 42, "revenue": 1234.5}


@wfr.activity(name="send_report")
def send_report(ctx: WorkflowActivityContext, report: dict) -> str:
    return f"sent report for {report['day']}"


@wfr.activity(name="count_stock")
def count_stock(ctx: WorkflowActivityContext, warehouse: str) -> dict:
    return {"warehouse": warehouse, "skus": 1200}


@wfr.workflow(name="daily_sales")
def daily_sales(ctx: DaprWorkflowContext, options: dict):
    """The report of the day before the run's (deterministic) start time."""
    day = (ctx.current_utc_datetime - timedelta(days=1)).date().isoformat()
    report = yield ctx.call_activity(sum_sales, input=day)
    sent = yield ctx.call_activity(send_report, input={**report, "to": options["to"]})
    return sent


@wfr.workflow(name="inventory_snapshot")
def inventory_snapshot(ctx: DaprWorkflowContext, warehouse: str):
    return (yield ctx.call_activity(count_stock, input=warehouse))


def create_schedules(client: WorkflowClient) -> None:
    client.create_schedule("daily-sales", daily_sales, cron="30 7 * * MON-FRI", timezone="Europe/Paris",
                           input={"to": "sales@example.com"}, jitter=timedelta(seconds=30),
                           catchup_window=timedelta(hours=2), replace=True,
                           note="the sales team reads it at 8")
    client.create_schedule("inventory-snapshot", inventory_snapshot, every=timedelta(minutes=15), input="north",
                           overlap="skip", start_at=datetime(2026, 1, 1), replace=True)


if __name__ == "__main__":
    c = WorkflowClient()
    create_schedules(c)
    for info in c.list_schedules():
        print(info.schedule_id, "next:", info.next_run)
