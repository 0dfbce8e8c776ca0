"""Helpers for testing workflows against a real store: time skipping for durable timers.

A workflow that waits seven days for an approval is tested by skipping those seven days, not by
waiting them. Durable timers (``ctx.create_timer``, retry backoffs and scheduled starts) live in
the store's timer index, a sorted set scored by fire time, which every worker pool's poller reads.
``skip_timers`` lowers the scores of pending timers to *now*, so the next poll (a fraction of a
second later) fires them through the normal, atomic path: each still fires exactly once, and the
workflow sees a ``TimerFired`` exactly as in production. Only the moment changes: the firing's
timestamp (and the workflow's ``current_utc_datetime`` in the step it wakes) is the real time,
earlier than the timer's recorded ``fire_at``.

Nothing in the engine imports this module; it only touches the timer index, and only with
``ZADD XX LT`` (update an entry that still exists, to an earlier time), so it can never re-arm a
timer that has already fired nor delay one. Use it against test stores only: it changes when real
timers fire.

    from orchestrator.testing import skip_timers, wait_for_timers

    instance_id = client.schedule_new_workflow("request_escalation", input={"amount": 5000})
    wait_for_timers(client, instance_id)          # the workflow is now blocked on its timer
    skip_timers(client, instance_id)              # "seven days later"
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from .core.context import to_ms
from .store.redis_store import RedisStore

# A WorkflowClient, a WorkflowRuntime (anything with a ``store``) or a RedisStore.
StoreLike = Union[RedisStore, Any]

__all__ = ["PendingTimer", "pending_timers", "skip_timers", "wait_for_timers"]


@dataclass(frozen=True)
class PendingTimer:
    """A timer index entry that has not fired yet."""

    instance_id: str
    key: str  # "<generation>.<seq>" of a workflow timer, or "start" for a scheduled start
    fire_at: datetime  # UTC, timezone-aware

    @property
    def is_scheduled_start(self) -> bool:
        return self.key == "start"


def _store(target: StoreLike) -> RedisStore:
    store = target if isinstance(target, RedisStore) else getattr(target, "store", None)
    if not isinstance(store, RedisStore):
        raise TypeError(
            f"expected a WorkflowClient, a WorkflowRuntime or a RedisStore, got {type(target).__name__}"
        )
    return store


def _deadline_ms(until: datetime | timedelta | None, now_ms: int) -> float:
    if until is None:
        return float("inf")
    if isinstance(until, timedelta):
        return now_ms + until.total_seconds() * 1000
    if isinstance(until, datetime):
        return to_ms(until)  # a naive datetime is UTC, as everywhere in the engine
    raise TypeError(f"until must be a datetime, a timedelta or None, got {type(until).__name__}")


def _entries(store: RedisStore, instance_id: str | None, max_ms: float) -> list[tuple[str, str, int]]:
    upper = "+inf" if max_ms == float("inf") else int(max_ms)
    raw = store.redis.zrangebyscore(store.keys.timers, "-inf", upper, withscores=True)
    out = []
    for member, score in raw:
        owner, _, key = member.decode().rpartition("|")
        if instance_id is None or owner == instance_id:
            out.append((owner, key, int(score)))
    return out


def pending_timers(target: StoreLike, instance_id: str | None = None) -> list[PendingTimer]:
    """Timers not fired yet (all instances, or one), soonest first."""
    return [
        PendingTimer(owner, key, datetime.fromtimestamp(score / 1000, tz=timezone.utc))
        for owner, key, score in _entries(_store(target), instance_id, float("inf"))
    ]


def skip_timers(target: StoreLike, instance_id: str | None = None,
                until: datetime | timedelta | None = None) -> int:
    """Make pending timers due now, so the pools' pollers fire them at their next poll.

    ``instance_id`` limits it to one instance; ``until`` to timers due at or before that moment (a
    ``timedelta`` counts from now: ``until=timedelta(days=7)`` is "let seven days pass"). Scheduled
    starts count as timers. Returns how many timers were moved; timers already due are left as is.
    """
    store = _store(target)
    now = int(time.time() * 1000)
    moved = [(owner, key) for owner, key, score in _entries(store, instance_id, _deadline_ms(until, now))
             if score > now]
    if not moved:
        return 0
    pipe = store.redis.pipeline(transaction=False)
    for owner, key in moved:
        # XX: never re-add a timer a poller fired meanwhile; LT: never make one later.
        pipe.zadd(store.keys.timers, {f"{owner}|{key}": now}, xx=True, lt=True, ch=True)
    return sum(pipe.execute())


def wait_for_timers(target: StoreLike, instance_id: str | None = None, count: int = 1,
                    timeout: float = 30.0) -> list[PendingTimer]:
    """Wait until at least ``count`` timers are pending (the workflow has reached its wait); return them."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    deadline = time.monotonic() + timeout
    while True:
        timers = pending_timers(target, instance_id)
        if len(timers) >= count:
            return timers
        if time.monotonic() >= deadline:
            where = f"instance {instance_id!r}" if instance_id else "the store"
            raise TimeoutError(f"{where} has {len(timers)} pending timer(s) after {timeout}s, expected {count}")
        time.sleep(0.02)
