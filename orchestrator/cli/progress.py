"""Waiting for an instance with a progress line on stderr.

On a terminal the line is redrawn in place: a spinner, the status, a bar of the calls the instance
awaits (done of all, then how many are running and queued) and the elapsed time. When stderr is not a
terminal (CI logs, pipes) a line is printed only when the status or the counts change, so logs stay
short. Ctrl-C stops waiting and nothing else: the instance lives in Redis and keeps running. Everything
is read through the client (``get_workflow_state``, ``get_call_progress``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..core.errors import InstanceNotFoundError
from ..core.vocabulary import TERMINAL

FINAL = TERMINAL
SPINNER = "|/-\\"
BAR = 20
PROGRESS_EVERY = 1.0  # seconds between reads of the calls' progress (it reads the instance's history)


def counts_of(progress: dict[int, dict[str, Any]]) -> dict[str, int]:
    out = {"completed": 0, "failed": 0, "running": 0, "queued": 0}
    for live in progress.values():
        state = live.get("state")
        if state in out:
            out[state] += 1
    return out


def bar(counts: dict[str, int], width: int = BAR) -> str:
    """``[######>>>.....] 18/80 done, 40 running, 22 queued`` (done = completed + failed)."""
    total = sum(counts.values())
    if not total:
        return ""
    done = counts["completed"] + counts["failed"]
    filled = round(width * done / total)
    running = min(width - filled, round(width * counts["running"] / total))
    cells = "#" * filled + ">" * running + "." * (width - filled - running)
    parts = [f"{done}/{total} done"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    parts += [f"{counts['running']} running", f"{counts['queued']} queued"]
    return f"[{cells}] " + ", ".join(parts)


class Progress:
    def __init__(self, instance_id: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.instance_id = instance_id
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self._last: tuple[str, str] | None = None
        self._frame = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(self, status: str, counts: dict[str, int] | None = None) -> None:
        if not self.enabled:
            return
        calls = bar(counts) if counts else ""
        text = f"{self.instance_id}: {status}{', ' + calls if calls else ''}, {self.elapsed():.1f}s"
        if self.tty:
            self._frame += 1
            self.stream.write(f"\r\x1b[2K{SPINNER[self._frame % len(SPINNER)]} {text}")
            self.stream.flush()
        elif self._last != (status, calls):
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last = (status, calls)

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def wait_for(client: Any, instance_id: str, *, timeout: float | None, progress: Progress,
             until: frozenset[str] = FINAL) -> str:
    """Poll the instance (through ``client``) until its status is in ``until``; return it. Raises
    ``InstanceNotFoundError`` if the instance is missing, ``TimeoutError`` after ``timeout`` seconds,
    ``KeyboardInterrupt`` on Ctrl-C (the caller reports it; nothing is sent to the instance)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay, counts, read_at, last_status = 0.02, None, 0.0, None
    try:
        while True:
            state = client.get_workflow_state(instance_id, fetch_payloads=False)
            if state is None:
                raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
            status = state.runtime_status.name
            due = status != last_status or time.monotonic() - read_at >= PROGRESS_EVERY
            last_status = status
            if status not in until and progress.enabled and due:
                read_at = time.monotonic()
                try:
                    counts = counts_of(client.get_call_progress(instance_id))
                except InstanceNotFoundError:
                    counts = None
            progress.update(status, counts)
            if status in until:
                return str(status)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"instance {instance_id!r} is still {status} after {timeout:g}s "
                                   "(it keeps running; wait again with `orchestrator wait`)")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
    finally:
        progress.done()
