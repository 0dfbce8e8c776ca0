"""Commands on instances: start, wait, status, list, history, raise-event, terminate, suspend,
resume, purge, rerun, and batch operations on every instance a filter matches. Each talks to Redis
through WorkflowClient (no API server needed). Every time printed is ISO 8601 with its zone (UTC)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..core.errors import InstanceNotFoundError
from ..core.vocabulary import Status
from ..state import WorkflowState, WorkflowStatus
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ISO_TIME,
    JSON,
    Failed,
    client,
    compact,
    emit,
    fmt_time,
    iso_times,
    json_option,
    operation,
    table,
)
from .progress import Progress, wait_for

STATUSES = [s.name for s in WorkflowStatus if s is not WorkflowStatus.UNKNOWN]
UNSUCCESSFUL = frozenset({Status.FAILED, Status.TERMINATED})


def describe(state: WorkflowState) -> str:
    rows = [
        ("instance", state.instance_id), ("workflow", state.name), ("status", state.runtime_status.name),
        ("app", state.app_id), ("created", fmt_time(state.created_at)), ("updated", fmt_time(state.last_updated_at)),
        ("completed", fmt_time(state.completed_at)),
    ]
    if state.parent_instance_id:
        rows.append(("parent", state.parent_instance_id))
    rows.append(("input", compact(state.input, 200)))
    if state.custom_status is not None:
        rows.append(("custom status", compact(state.custom_status, 200)))
    if state.output is not None:
        rows.append(("output", compact(state.output, 200)))
    if state.failure_details is not None:
        rows.append(("failure", f"{state.failure_details.error_type}: {state.failure_details.message}"))
    if state.rerun_of:
        rows.append(("rerun of", state.rerun_of))
    return "\n".join(f"{k:<14}{v}" for k, v in rows)


def _state(c: Any, instance_id: str) -> WorkflowState:
    state = c.get_workflow_state(instance_id)
    if state is None:
        raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
    return state


def _wait_and_report(c: Any, instance_id: str, timeout: float | None, quiet: bool, as_json: bool) -> None:
    """Wait with progress, print the final state, exit 1 unless it COMPLETED, 130 on Ctrl-C."""
    progress = Progress(instance_id, enabled=not quiet)
    try:
        status = wait_for(c, instance_id, timeout=timeout, progress=progress)
    except KeyboardInterrupt:
        state = c.get_workflow_state(instance_id, fetch_payloads=False)
        now = state.runtime_status.name if state else "unknown"
        click.echo(f"stopped waiting after {progress.elapsed():.1f}s; instance {instance_id} is {now} "
                   "and keeps running", err=True)
        if as_json:
            emit(True, {"instance_id": instance_id, "runtime_status": now, "interrupted": True}, "")
        raise SystemExit(EXIT_INTERRUPTED) from None
    state = _state(c, instance_id)
    emit(as_json, state.to_dict(), lambda: describe(state))
    if status in UNSUCCESSFUL:
        detail = f": {state.failure_details.message}" if state.failure_details else ""
        click.echo(f"Error: instance {instance_id} {status}{detail}", err=True)
        raise SystemExit(EXIT_FAILED)


def _ack(as_json: bool, instance_id: str, op: str, human: str) -> None:
    emit(as_json, {"instance_id": instance_id, "operation": op, "ok": True}, human)


@click.command()
@click.argument("name")
@click.option("--input", "input_", type=JSON, default=None, help="Workflow input as JSON (or @file.json).")
@click.option("--id", "instance_id", default=None, help="Instance id (default: a random one).")
@click.option("--wait", is_flag=True, help="Wait until it finishes; exit 1 if it FAILED or was TERMINATED.")
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=None, help="With --wait: give up after S seconds (exit 1)."
)
@click.option("--quiet", "-q", is_flag=True, help="With --wait: no progress line on stderr.")
@click.option("--reuse-id-policy", type=click.Choice(["error", "replace"]), default=None,
              help="With --id: 'replace' replaces a finished instance of that id (default: error).")
@click.option("--app-id", default=None, help="Route the start to this app's pool (default: the app serving NAME).")
@click.option("--start-at", type=ISO_TIME, default=None, help="Start at this ISO 8601 time instead of now.")
@click.option("--priority", type=click.IntRange(0, 9), default=None,
              help="0 (first, the default) to 9 (last): its order in the queues (docs/flow-control.md).")
@click.option("--dedup-id", default=None, help="While a run started with this id is live, print its id instead.")
@json_option
@operation
def start(name: str, input_: Any, instance_id: str | None, wait: bool, timeout: float | None, quiet: bool,
          reuse_id_policy: str | None, app_id: str | None, start_at: Any, priority: int | None, dedup_id: str | None,
          as_json: bool) -> None:
    """Start workflow NAME. Prints the instance id (or, with --wait, its final state)."""
    c = client()
    new_id = c.schedule_new_workflow(name, input=input_, instance_id=instance_id, reuse_id_policy=reuse_id_policy,
                                     app_id=app_id, start_at=start_at, priority=priority, dedup_id=dedup_id)
    if not wait:
        emit(as_json, {"instance_id": new_id}, new_id)
        return
    if not as_json:
        click.echo(f"started {name} as {new_id}", err=True)
    _wait_and_report(c, new_id, timeout, quiet, as_json)


@click.command()
@click.argument("instance_id")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Give up after S seconds (exit 1).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line on stderr.")
@json_option
@operation
def wait(instance_id: str, timeout: float | None, quiet: bool, as_json: bool) -> None:
    """Wait for INSTANCE_ID to finish; exit 0 if it COMPLETED, 1 otherwise, 130 on Ctrl-C."""
    _wait_and_report(client(), instance_id, timeout, quiet, as_json)


@click.command()
@click.argument("instance_id")
@json_option
@operation
def status(instance_id: str, as_json: bool) -> None:
    """Show an instance: status, times, input, output, failure. Exit 0 whatever its status."""
    state = _state(client(), instance_id)
    emit(as_json, state.to_dict(), lambda: describe(state))


@click.command(name="list")
@click.option("--status", "status_", type=click.Choice(STATUSES, case_sensitive=False), default=None,
              help="Only instances in this status.")
@click.option("--name", default=None, help="Only instances of this workflow.")
@click.option("--parent", default=None, help="Only the children of this instance.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip the newest N.")
@click.option("--created-from", type=ISO_TIME, default=None, help="Only instances created at or after (ISO 8601).")
@click.option("--created-to", type=ISO_TIME, default=None, help="Only instances created at or before (ISO 8601).")
@click.option("--with-payloads", is_flag=True, help="Read inputs, outputs and custom status too (shown with --json).")
@json_option
@operation
def list_(status_: str | None, name: str | None, parent: str | None, limit: int, offset: int, created_from: Any,
          created_to: Any, with_payloads: bool, as_json: bool) -> None:
    """List instances, newest first."""
    states = client().list_workflows(status=status_, name=name, parent_instance_id=parent, offset=offset, limit=limit,
                                     created_from=created_from, created_to=created_to, fetch_payloads=with_payloads)

    def human() -> str:
        if not states:
            return "no instances"
        rows = [[s.instance_id, s.name, s.runtime_status.name, fmt_time(s.created_at), fmt_time(s.last_updated_at),
                 compact(f"{s.failure_details.error_type}: {s.failure_details.message}", 60).strip('"')
                 if s.failure_details else ""] for s in states]
        return table(rows, ["INSTANCE", "WORKFLOW", "STATUS", "CREATED", "UPDATED", "ERROR"])

    emit(as_json, [s.to_dict() for s in states], human)


@click.command()
@click.argument("instance_id")
@click.option("--export", "export_path", type=click.Path(dir_okay=False, writable=True), default=None,
              metavar="FILE", help="Write metadata + history as a versioned JSON document to FILE, for "
                                   "orchestrator.testing.Replayer ('-' for stdout).")
@json_option
@operation
def history(instance_id: str, export_path: str | None, as_json: bool) -> None:
    """Show an instance's history events, oldest first (or export them with --export FILE)."""
    if export_path is not None:
        from ..history_export import write_file

        doc = client().export_history(instance_id)
        if export_path == "-":
            click.echo(json.dumps(doc, indent=1))
            return
        write_file(doc, export_path)
        emit(as_json, {"instance_id": instance_id, "exported": export_path, "events": len(doc["events"])},
             f"exported {len(doc['events'])} events of {instance_id} to {export_path}")
        return
    events = [iso_times(e) for e in client().get_workflow_history(instance_id)]

    def human() -> str:
        rows = [[str(i), e.get("ts", "-"), e["kind"],
                 compact({k: v for k, v in e.items() if k not in ("kind", "ts")}, 90)] for i, e in enumerate(events)]
        return table(rows, ["#", "TIME", "EVENT", "DETAILS"])

    emit(as_json, events, human)


@click.command(name="raise-event")
@click.argument("instance_id")
@click.argument("event_name")
@click.option("--data", type=JSON, default=None, help="Event data as JSON (or @file.json).")
@json_option
@operation
def raise_event(instance_id: str, event_name: str, data: Any, as_json: bool) -> None:
    """Deliver event EVENT_NAME to an instance (buffered until the workflow waits for it)."""
    client().raise_workflow_event(instance_id, event_name, data=data)
    _ack(as_json, instance_id, "raise-event", f"raised {event_name} on {instance_id}")


@click.command()
@click.argument("instance_id")
@click.option("--output", type=JSON, default=None, help="Output to record, as JSON.")
@json_option
@operation
def terminate(instance_id: str, output: Any, as_json: bool) -> None:
    """Terminate an instance and its running children."""
    client().terminate_workflow(instance_id, output=output)
    _ack(as_json, instance_id, "terminate", f"terminate requested for {instance_id}")


@click.command()
@click.argument("instance_id")
@json_option
@operation
def suspend(instance_id: str, as_json: bool) -> None:
    """Suspend an instance: events are kept, no step runs until it is resumed."""
    client().pause_workflow(instance_id)
    _ack(as_json, instance_id, "suspend", f"suspend requested for {instance_id}")


@click.command()
@click.argument("instance_id")
@json_option
@operation
def resume(instance_id: str, as_json: bool) -> None:
    """Resume a suspended instance."""
    client().resume_workflow(instance_id)
    _ack(as_json, instance_id, "resume", f"resume requested for {instance_id}")


@click.command()
@click.argument("instance_id")
@json_option
@operation
def purge(instance_id: str, as_json: bool) -> None:
    """Delete a finished instance's state and history (and its children's)."""
    client().purge_workflow(instance_id)
    _ack(as_json, instance_id, "purge", f"purged {instance_id}")


@click.command()
@click.argument("instance_id")
@click.option("--from-step", type=click.IntRange(min=1), default=1, show_default=True,
              help="Run this call (counted from 1) and everything after it again; earlier calls' results are reused.")
@click.option("--input", "input_", type=JSON, default=None, help="A new input as JSON (default: the original's).")
@click.option("--new-id", default=None, help="The new instance's id (default: a random one).")
@click.option("--wait", is_flag=True, help="Wait until the new instance finishes; exit 1 unless it COMPLETED.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="With --wait: give up after S seconds.")
@click.option("--quiet", "-q", is_flag=True, help="With --wait: no progress line on stderr.")
@json_option
@operation
def rerun(instance_id: str, from_step: int, input_: Any, new_id: str | None, wait: bool, timeout: float | None,
          quiet: bool, as_json: bool) -> None:
    """Start a new instance from finished INSTANCE_ID, reusing its calls before --from-step."""
    c = client()
    options: dict[str, Any] = {"from_step": from_step, "new_instance_id": new_id}
    if input_ is not None:
        options["input"] = input_
    started = c.rerun_workflow(instance_id, **options)
    if not wait:
        emit(as_json, {"instance_id": started, "rerun_of": instance_id, "from_step": from_step}, started)
        return
    if not as_json:
        click.echo(f"rerun of {instance_id} from step {from_step} started as {started}", err=True)
    _wait_and_report(c, started, timeout, quiet, as_json)


_BATCH_VERB = {"terminate": "Terminate", "purge": "Purge", "rerun": "Rerun"}


@click.command()
@click.argument("operation", type=click.Choice(sorted(_BATCH_VERB)))
@click.option("--status", "status_", type=click.Choice(STATUSES, case_sensitive=False), default=None)
@click.option("--name", default=None, help="Only instances of this workflow.")
@click.option("--error-type", default=None, help="Only failed instances with this error type (short or qualified).")
@click.option("--id-prefix", default=None, help="Only instances whose id starts with this.")
@click.option("--created-from", type=ISO_TIME, default=None, help="Created at or after (ISO 8601).")
@click.option("--created-to", type=ISO_TIME, default=None, help="Created at or before (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True,
              help="Act on at most this many (newest first).")
@click.option("--dry-run", is_flag=True, help="Only count what matches.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@json_option
@operation
def batch(operation: str, status_: str | None, name: str | None, error_type: str | None, id_prefix: str | None,
          created_from: Any, created_to: Any, limit: int, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Terminate, purge or rerun (from its first step) every instance the filters match.

    Shows how many match and asks before acting (--yes skips that). Instances the operation does not
    apply to (terminating a finished one, purging a running one) are skipped and listed."""
    c = client()
    filters: dict[str, Any] = dict(status=status_, name=name, error_type=error_type, id_prefix=id_prefix,
                   created_from=created_from, created_to=created_to, limit=limit)
    if not any(v is not None for k, v in filters.items() if k != "limit"):
        raise click.UsageError("give at least one filter (--status, --name, --error-type, --id-prefix, "
                               "--created-from, --created-to): a batch never acts on everything by default")
    preview = c.batch_workflows(operation, dry_run=True, **filters)
    matched = preview["matched"]
    verb = _BATCH_VERB[operation]
    more = " (the newest; raise --limit for more)" if preview["capped"] else ""
    if dry_run or not matched:
        emit(as_json, preview, f"{matched} instance(s) match{more}")
        return
    if not yes:
        if not sys.stdin.isatty():
            click.echo(f"{matched} instance(s) match; pass --yes to {operation} them without a prompt", err=True)
            raise SystemExit(EXIT_USAGE)
        if not click.confirm(f"{verb} {matched} instance(s){more}?", err=True):
            raise Failed("cancelled: nothing was changed", "Cancelled")
    result = c.batch_workflows(operation, **filters)

    def human() -> str:
        lines = [f"{verb}: {len(result['done'])} done, {len(result['skipped'])} skipped, "
                 f"{len(result['failed'])} failed of {result['matched']} matched"]
        lines += [f"  skipped {i}: {why}" for i, why in result["skipped"].items()]
        lines += [f"  failed  {i}: {why}" for i, why in result["failed"].items()]
        lines += [f"  {old} -> {new}" for old, new in result["new_ids"].items()]
        return "\n".join(lines)

    emit(as_json, result, human)
    if result["failed"]:
        raise SystemExit(EXIT_FAILED)


COMMANDS = [start, wait, status, list_, history, raise_event, terminate, suspend, resume, purge, rerun, batch]
