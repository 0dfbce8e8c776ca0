"""``orchestrator schedule ...``: durable schedules (docs/schedules.md), through WorkflowClient."""

from __future__ import annotations

from typing import Any

import click

from .common import ISO_TIME, JSON, Failed, client, compact, emit, json_option, operation, table

OVERLAPS = ["skip", "buffer_one", "allow_all", "cancel_other", "terminate_other"]


def _describe(d: dict[str, Any]) -> str:
    when = d["cron"] if d["cron"] is not None else f"every {d['every_seconds']:g}s"
    last = d["last_run"]
    rows = [("schedule", d["schedule_id"]), ("workflow", d["workflow"]), ("when", f"{when} ({d['timezone']})"),
            ("overlap", d["overlap"]), ("paused", "yes" if d["paused"] else "no"),
            ("next runs", ", ".join(d["next_runs"][:3]) or "-"),
            ("last run", f"{last['instance_id']} ({last['status']})" if last else "-"),
            ("fired", f"{d['fired']} (skipped {d['skipped']}, missed {d['missed']})"),
            ("input", compact(d["input"], 200))]
    if d["note"]:
        rows.append(("note", d["note"]))
    return "\n".join(f"{k:<11}{v}" for k, v in rows)


@click.group()
def schedule() -> None:
    """Durable schedules: start a workflow on a cron expression or a fixed interval."""


@schedule.command()
@click.argument("schedule_id")
@click.argument("workflow")
@click.option("--cron", default=None, help="Cron expression (5 fields, or 6 with seconds first; @daily, ...).")
@click.option("--every", type=click.FloatRange(min=1), default=None, help="Fixed interval in seconds.")
@click.option("--input", "input_", type=JSON, default=None, help="Input of every run, as JSON (or @file.json).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the cron expression.")
@click.option("--jitter", type=click.FloatRange(min=0), default=0, help="Delay each run by up to S seconds.")
@click.option("--start-at", type=ISO_TIME, default=None, help="No run before this time (ISO 8601).")
@click.option("--end-at", type=ISO_TIME, default=None, help="No run after this time (ISO 8601).")
@click.option("--overlap", type=click.Choice(OVERLAPS), default="skip", show_default=True,
              help="What a run due while the previous one still runs does.")
@click.option("--catchup-window", type=click.FloatRange(min=0), default=60, show_default=True,
              help="After an outage, run missed times no older than S seconds.")
@click.option("--app-id", default=None, help="Route the runs to this app's pool.")
@click.option("--note", default="", help="A note shown with the schedule.")
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--replace", is_flag=True, help="Replace the spec of an existing schedule of that id.")
@json_option
@operation
def create(schedule_id: str, workflow: str, cron: str | None, every: float | None, input_: Any, timezone: str,
           jitter: float, start_at: Any, end_at: Any, overlap: str, catchup_window: float, app_id: str | None,
           note: str, paused: bool, replace: bool, as_json: bool) -> None:
    """Create schedule SCHEDULE_ID starting WORKFLOW (give --cron or --every)."""
    info = client().create_schedule(schedule_id, workflow, cron=cron, every=every, input=input_, timezone=timezone,
                                    jitter=jitter, start_at=start_at, end_at=end_at, overlap=overlap,
                                    catchup_window=catchup_window, app_id=app_id, note=note, paused=paused,
                                    replace=replace)
    d = info.to_dict()
    emit(as_json, d, lambda: _describe(d))


@schedule.command(name="list")
@json_option
@operation
def list_(as_json: bool) -> None:
    """List schedules with their next and last runs."""
    items = [i.to_dict() for i in client().list_schedules()]

    def human() -> str:
        if not items:
            return "no schedules"
        rows = [[d["schedule_id"], d["workflow"], d["cron"] or f"every {d['every_seconds']:g}s",
                 "paused" if d["paused"] else "active", (d["next_runs"] or ["-"])[0],
                 f"{d['last_run']['instance_id']} {d['last_run']['status']}" if d["last_run"] else "-"]
                for d in items]
        return table(rows, ["SCHEDULE", "WORKFLOW", "WHEN", "STATE", "NEXT RUN", "LAST RUN"])

    emit(as_json, items, human)


@schedule.command()
@click.argument("schedule_id")
@json_option
@operation
def show(schedule_id: str, as_json: bool) -> None:
    """Show one schedule."""
    d = client().get_schedule(schedule_id).to_dict()
    emit(as_json, d, lambda: _describe(d))


@schedule.command()
@click.argument("schedule_id")
@click.option("--note", default=None, help="Why it is paused (shown with it).")
@json_option
@operation
def pause(schedule_id: str, note: str | None, as_json: bool) -> None:
    """Pause a schedule: no run starts until it is resumed."""
    d = client().pause_schedule(schedule_id, note=note).to_dict()
    emit(as_json, d, f"paused {schedule_id}")


@schedule.command()
@click.argument("schedule_id")
@json_option
@operation
def resume(schedule_id: str, as_json: bool) -> None:
    """Resume a paused schedule from now (times that passed while paused do not run)."""
    d = client().resume_schedule(schedule_id).to_dict()
    emit(as_json, d, f"resumed {schedule_id}; next run {(d['next_runs'] or ['-'])[0]}")


@schedule.command()
@click.argument("schedule_id")
@json_option
@operation
def delete(schedule_id: str, as_json: bool) -> None:
    """Delete a schedule (its runs stay)."""
    client().delete_schedule(schedule_id)
    emit(as_json, {"schedule_id": schedule_id, "deleted": True}, f"deleted {schedule_id}")


@schedule.command()
@click.argument("schedule_id")
@click.option("--overlap", type=click.Choice(OVERLAPS), default=None, help="Override the schedule's policy.")
@json_option
@operation
def trigger(schedule_id: str, overlap: str | None, as_json: bool) -> None:
    """Start a run now, outside the schedule's times."""
    started = client().trigger_schedule(schedule_id, overlap=overlap)
    if started is None:
        raise Failed(f"schedule {schedule_id}: the previous run is still going and the overlap policy skips "
                     "this one (pass --overlap allow_all to start it anyway)", "Skipped")
    emit(as_json, {"schedule_id": schedule_id, "instance_id": started}, started)


@schedule.command()
@click.argument("schedule_id")
@click.option("--start", "start_", type=ISO_TIME, required=True, help="First nominal time to run (ISO 8601).")
@click.option("--end", type=ISO_TIME, required=True, help="Last nominal time to run (ISO 8601).")
@json_option
@operation
def backfill(schedule_id: str, start_: Any, end: Any, as_json: bool) -> None:
    """Run every nominal time in [--start, --end] that has not run yet."""
    result = client().backfill_schedule(schedule_id, start_, end)
    emit(as_json, result, f"started {len(result['started'])} run(s); {len(result['existed'])} had run already")


COMMANDS = [schedule]
