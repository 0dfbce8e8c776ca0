"""The message budget: how long the Celery message a thread is running has run, and how many eager
activities it has run, so that a batch or a chain of eager activities yields in time.

A wide fan-out's batch that has run for ``message_budget_seconds`` sends what remains back to the
queue as single messages; an eager chain stops at ``eager_activity_hops`` activities or at the
budget, whichever comes first (worker/activities.py). Outside a step or activity message (a sweeper,
a client, the control plane) nothing runs eagerly.
"""

from __future__ import annotations

import threading
import time


class MessageBudget:
    def __init__(self, seconds: float, eager_hops: int) -> None:
        self.seconds = seconds
        self.eager_hops = eager_hops  # 0: eager activities off
        self._message = threading.local()  # the Celery message this thread is running

    def begin(self) -> None:
        self._message.started, self._message.hops = time.monotonic(), 0

    def end(self) -> None:
        self._message.started = None

    def elapsed(self) -> float | None:
        """How long this thread has been running its current step or activity message; None outside one."""
        started = getattr(self._message, "started", None)
        return None if started is None else time.monotonic() - started

    def over(self) -> bool:
        """Has the current message run past the budget (batches and eager runs yield then)?"""
        elapsed = self.elapsed()
        return elapsed is not None and elapsed > self.seconds

    def take_eager_hop(self) -> bool:
        """May one more activity run eagerly under the current message? Counts it when so."""
        if not self.eager_hops or self.elapsed() is None:
            return False
        if self._message.hops >= self.eager_hops or self.over():
            return False
        self._message.hops += 1
        return True


__all__ = ["MessageBudget"]
