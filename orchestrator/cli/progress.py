"""Waiting for an instance with a progress line on stderr.

On a terminal the line is redrawn in place: a spinner, the status, the step count (the instance's
history version: one per committed orchestration step) and the elapsed time. When stderr is not a
terminal (CI logs, pipes) a line is printed only when the status or the step count changes, so logs
stay short. Ctrl-C stops waiting and nothing else: the instance lives in Redis and keeps running.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..core.errors import InstanceNotFoundError
from ..core.vocabulary import TERMINAL

FINAL = TERMINAL
SPINNER = "|/-\\"


class Progress:
    def __init__(self, instance_id: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.instance_id = instance_id
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self._last: tuple[str, int] | None = None
        self._frame = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(self, status: str, steps: int) -> None:
        if not self.enabled:
            return
        text = f"{self.instance_id}: {status}, step {steps}, {self.elapsed():.1f}s"
        if self.tty:
            self._frame += 1
            self.stream.write(f"\r\x1b[2K{SPINNER[self._frame % len(SPINNER)]} {text}")
            self.stream.flush()
        elif self._last != (status, steps):
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last = (status, steps)

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def wait_for(queries: Any, instance_id: str, *, timeout: float | None, progress: Progress,
             until: frozenset[str] = FINAL) -> str:
    """Poll the instance (through ``queries``, the client's ``queries``) until its status is in
    ``until``; return it. Raises ``InstanceNotFoundError`` if the
    instance is missing, ``TimeoutError`` after ``timeout`` seconds, ``KeyboardInterrupt`` on Ctrl-C
    (the caller reports it; nothing is sent to the instance)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.02
    try:
        while True:
            meta = queries.meta(instance_id)
            if meta is None:
                raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
            progress.update(meta.status, meta.version)
            if meta.status in until:
                return str(meta.status)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"instance {instance_id!r} is still {meta.status} after {timeout:g}s "
                                   "(it keeps running; wait again with `orchestrator wait`)")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
    finally:
        progress.done()
