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
@json_option
@operation
def pools(include_dead: bool, as_json: bool) -> None:
    """Every live worker process: app id, host, pid, what it registers, its current work, its heartbeat."""
    found = client().list_processes(include_dead=include_dead)

    def human() -> str:
        if not found:
            return "no live worker process (start one: orchestrator worker MODULE)"
        rows = [[p["app_id"], p["host"], str(p["pid"]), p["kind"], _names(p), str(len(p["work"])),
                 _age(p["heartbeat"]) + ("" if p["alive"] else " (dead)")] for p in found]
        return table(rows, ["APP", "HOST", "PID", "KIND", "REGISTERS", "WORK", "HEARTBEAT"])

    emit(as_json, found, human)


COMMANDS = [pools]
