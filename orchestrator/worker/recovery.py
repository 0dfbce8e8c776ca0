"""What the engine does when something outside it went wrong, so nothing waits forever or loops.

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
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..core.errors import FailureDetails
from ..core.history import HistoryFormatError, TaskScheduled
from ..core.vocabulary import Status
from ..store import records
from ..store.redis_store import Commit

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("orchestrator.engine")


def activity_record(meta: Any, action: TaskScheduled) -> records.ActivityRecord:
    """The message of one activity attempt (sent by its step, or again by the sweeper)."""
    return records.activity_record(meta, action.seq, action.name, action.input, action.app_id, action.attempt)


def redeliver_silent_activities(engine: Engine, now: int) -> int:
    """Publish again the attempts silent for ``engine.redeliver_after_ms``; returns how many."""
    if not engine.redeliver_after_ms:
        return 0
    store = engine.store
    silent = store.claim_stale("activities", now - engine.redeliver_after_ms, now)
    live = store.live_apps(now - 3 * engine.stale_after_ms) | {engine.app_id} if silent else set()
    by_instance: dict[str, list[str]] = {}
    for member in silent:
        by_instance.setdefault(member.rpartition("|")[0], []).append(member)
    sent = 0
    for instance_id, members in by_instance.items():
        meta = store.get_meta(instance_id)
        keys = [m.rpartition("|")[2] for m in members]
        awaited = [k for k in keys if meta is not None and not meta.is_terminal
                   and k.partition(".")[0] == str(meta.generation) and store.task_outstanding(instance_id, k)]
        for key in set(keys) - set(awaited):
            store.forget_activity(f"{instance_id}|{key}")
        if not awaited or meta is None:
            continue
        scheduled = _scheduled(engine, instance_id, meta)  # once per instance, however many of its calls are silent
        if scheduled is None:
            continue
        for key in awaited:
            action = scheduled.get(key)
            if action is None:
                store.forget_activity(f"{instance_id}|{key}")
                continue
            record = activity_record(meta, action)
            if record["app"] not in live:
                continue  # its first message waits in the queue of an app with no pool yet
            log.warning("activity %s (task %s, attempt %s) of %s showed no sign of life for %.0f s; publishing "
                        "it again", action.name, key, action.attempt, instance_id, engine.redeliver_after_ms / 1000,
                        extra={"instance_id": instance_id, "activity": action.name})
            engine.publisher.send_activity(record, record["app"])
            sent += 1
    return sent


def requeue_eager(engine: Engine, instance_id: str) -> int:
    """Queue the instance's eager activities still awaited; returns how many.

    Called when a message that ran eager activities comes back redelivered: the process that ran it
    died (or held it past the visibility timeout), and an eager activity has no message of its own
    for kombu to bring back. A copy still running elsewhere makes this a duplicate run, as any
    redelivery can."""
    store = engine.store
    keys = store.eager_tasks(instance_id)
    meta = store.get_meta(instance_id) if keys else None
    scheduled = _scheduled(engine, instance_id, meta) if meta is not None and not meta.is_terminal else None
    if not scheduled:
        return 0
    sent = 0
    for key in keys:
        action = scheduled.get(key)
        if action is None:
            continue
        log.warning("activity %s (task %s, attempt %s) of %s was running eagerly under a message that came back; "
                    "queueing it", action.name, key, action.attempt, instance_id,
                    extra={"instance_id": instance_id, "activity": action.name})
        record = activity_record(meta, action)
        engine.publisher.send_activity(record, record["app"])
        sent += 1
    return sent


def _scheduled(engine: Engine, instance_id: str, meta: Any) -> dict[str, TaskScheduled] | None:
    """The instance's TaskScheduled events of its current generation by task key; None if its history
    does not decode (its next step fails it with that error)."""
    try:
        history = engine.store.get_history(instance_id)
    except HistoryFormatError:
        return None
    return {f"{meta.generation}.{e.seq}": e for e in history if isinstance(e, TaskScheduled)}


def fail_unreadable(engine: Engine, instance_id: str, err: HistoryFormatError) -> bool:
    """Fail an instance whose history or inbox does not decode. True when a concurrent step changed
    the instance first (the caller looks again)."""
    store = engine.store
    meta = store.get_meta(instance_id)
    if meta is None or meta.is_terminal:
        store.release(instance_id)
        return False
    now = engine.clock()
    failure = FailureDetails(f"instance {instance_id!r} cannot be replayed: {err}; its history and inbox "
                             "are left as they are", "HistoryFormatError", None)
    log.error("%s", failure.message, extra={"instance_id": instance_id, "workflow": meta.name})
    commit = Commit(version=meta.version, now=now, status=Status.FAILED, keep_wait=True,
                    fields=records.finished_fields(now, failure=failure),
                    name=meta.name, old_status=meta.status)
    engine._notify_parent(meta, commit, ok=False, value=failure)
    result = store.commit(instance_id, commit)
    if result.ok:
        engine.publish_outbox(instance_id, commit.outbox)
    return not (result.ok or result.gone)


def warn_history_size(engine: Engine, workflow: str, instance_id: str, events: int, added: int) -> None:
    """Log and count each time a history passes a multiple of ``engine.history_warn_events``: every
    step replays (or catches up on) it, and Redis holds all of it."""
    limit = engine.history_warn_events
    if limit > 0 and events >= limit and (events - added) // limit < events // limit:
        log.warning("instance %s of workflow %r has %d history events (setting history_warn_events = %d); "
                    "consider ctx.continue_as_new to go on with a fresh history", instance_id, workflow, events,
                    limit, extra={"instance_id": instance_id, "workflow": workflow})
        metrics.record_history_warning(engine.store, workflow)


__all__ = ["activity_record", "fail_unreadable", "redeliver_silent_activities", "requeue_eager", "warn_history_size"]
