"""What the engine does when something outside it went wrong, so nothing waits forever or loops.

Where each is handled: lost messages by the sweeper (worker/duties.py), unreadable entries by the
step loop (worker/steps.py), huge histories here.

* **Lost activity messages.** Kombu's Redis transport takes a message off the queue (``BRPOP``) and
  only then records it as unacknowledged. A worker SIGKILLed, or Redis crashing, between the two
  loses the message, and kombu's visibility timeout cannot bring it back: it never saw it. The store
  keeps every dispatched attempt whose result is not in yet in ``<prefix>:activities``, scored by its
  last sign of life (dispatch, then start). The sweeper publishes again an attempt silent for the
  ``visibility_timeout`` (kombu's own redelivery delay, so the contract is unchanged: it must exceed
  the longest activity, and here also the longest wait in the queue). An attempt that was merely
  queued that long gets a second message, which finds it done and is skipped.
* **Unreadable entries.** A history or inbox entry that does not decode (written by another tool,
  or damaged) fails the instance with ``HistoryFormatError`` naming the stream and the entry id; both
  streams stay as they are. Without this every step of that instance would raise, forever.
* **Huge histories.** Each time an instance's history passes a multiple of ``history_warn_events``
  the engine logs a warning and counts ``orchestrator_history_warnings_total``.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import metrics
from ..core.history import TaskScheduled
from ..store import records

log = logging.getLogger("orchestrator.engine")


def activity_record(meta: Any, action: TaskScheduled) -> records.ActivityRecord:
    """The message of one activity attempt (sent by its step, or again by the sweeper)."""
    return records.activity_record(meta, action.seq, action.name, action.input, action.app_id, action.attempt,
                                   action.heartbeat_ms, action.start_to_close_ms)


def warn_history_size(store: Any, limit: int, workflow: str, instance_id: str, events: int, added: int) -> None:
    """Log and count each time a history passes a multiple of ``limit`` (the setting
    ``history_warn_events``): every step replays (or catches up on) it, and Redis holds all of it."""
    if limit > 0 and events >= limit and (events - added) // limit < events // limit:
        log.warning("instance %s of workflow %r has %d history events (setting history_warn_events = %d); "
                    "consider ctx.continue_as_new to go on with a fresh history", instance_id, workflow, events,
                    limit, extra={"instance_id": instance_id, "workflow": workflow})
        metrics.record_history_warning(store, workflow)


__all__ = ["activity_record", "warn_history_size"]
