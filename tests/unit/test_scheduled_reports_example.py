"""The schedules example (workers/scheduled_reports.py) runs as documented, time skipped in the toolkit."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.testing import WorkflowTestEnvironment
from workers import scheduled_reports


def test_the_example_schedules_run() -> None:
    with WorkflowTestEnvironment(scheduled_reports.wfr) as env:
        scheduled_reports.create_schedules(env.client)
        env.advance(timedelta(days=7))
        sales = env.client.list_workflows(name="daily_sales", limit=100)
        assert len(sales) == 5  # one a weekday
        assert all(s.runtime_status.name == "COMPLETED" for s in sales)
        snapshots = env.client.list_workflows(name="inventory_snapshot", limit=1000)
        assert len(snapshots) == 7 * 24 * 4
        assert env.client.get_schedule("daily-sales").to_dict()["missed"] == 0
