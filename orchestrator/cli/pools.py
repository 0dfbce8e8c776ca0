"""``orchestrator pools``: the live worker processes (worker/liveness.py), through WorkflowClient."""

from __future__ import annotations

import time
from typing import Any

import click

from .common import client, emit, json_option, operation, table


def _age(heartbeat_ms: int) -> str:
    return f"{max(0.0, time.time() - heartbeat_ms / 1000):.1f}s ago"


def _names(p: dict[str, Any]) -> str:
    return f"{len(p['workflows'])} workflows, {len(p['activities'])} activities"


@click.command()
@click.option("--all", "include_dead", is_flag=True, help="Also processes whose heartbeat expired, not reaped yet.")
@click.option("--app", "app", default=None, metavar="APP", help="Only the processes of this app id.")
@json_option
@operation
def pools(include_dead: bool, app: str | None, as_json: bool) -> None:
    """Every live worker process: app id, host, pid, what it registers, its current work, its heartbeat.
    Pools of one app id that register different names are warned of (stderr; "mismatches" with --json)."""
    listing = client().list_pools(include_dead=include_dead, app=app)
    found = listing["items"]

    def human() -> str:
        if not found:
            return ("no live worker process" + (f" of app {app!r}" if app else "")
                    + " (start one: orchestrator worker MODULE)")
        rows = [[p["app_id"], p["host"], str(p["pid"]), p["kind"], _names(p), str(len(p["work"])),
                 _age(p["heartbeat"]) + ("" if p["alive"] else " (dead)")] for p in found]
        return table(rows, ["APP", "HOST", "PID", "KIND", "REGISTERS", "WORK", "HEARTBEAT"])

    if not as_json:
        for mismatch in listing["mismatches"]:
            click.echo(f"warning: {mismatch['message']}", err=True)
    emit(as_json, listing, human)


COMMANDS = [pools]
