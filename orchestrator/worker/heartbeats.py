"""Activity heartbeats and attempt deadlines (Temporal's ``heartbeat``, ``heartbeat_timeout`` and
``start_to_close_timeout``).

An activity calls ``ctx.heartbeat(details=None)`` while it works. With ``heartbeat_timeout`` on its
``call_activity``, the attempt has a deadline in ``P:deadlines`` that each heartbeat moves on; with
``start_to_close_timeout`` one fixed from when the attempt started (not when it was scheduled, which
``timeout`` counts from). Every pool's timer poll takes the deadlines that ran out (once, whoever
polls) and fails their attempts, if still awaited, with ``ActivityHeartbeatTimeoutError`` or
``ActivityStartToCloseTimeoutError``; the retry policy decides what follows, and a late result of
the timed-out attempt is dropped. The last details an attempt sent reach the call's next attempt
as ``ctx.heartbeat_details`` (a retry, or the same attempt run again after its process died).

Heartbeats are throttled to one write per quarter of the heartbeat timeout (per 2 s without one);
the latest details are written at the end of that quarter, whether or not another heartbeat comes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..codec import pack_value, unpack_value
from ..core.errors import FailureDetails
from ..core.history import TaskFailed
from ..core.vocabulary import member, split_member, task_token
from ..store.liveness import ProcessRegistry
from ..store.records import ActivityRecord, activity_task_key

log = logging.getLogger("orchestrator.engine")
TIMEOUT_ERRORS = {"hb": "ActivityHeartbeatTimeoutError", "stc": "ActivityStartToCloseTimeoutError"}


def details_field(rec: ActivityRecord) -> str:
    """Where a call's heartbeat details are kept: its run and generation, name and input (not its
    seq, which each retry changes)."""
    digest = hashlib.sha1(pack_value(rec.get("input")), usedforsecurity=False).hexdigest()[:16]
    return f"{rec.get('run', '')}.{rec['gen']}|{rec['name']}|{digest}"


def claim_of(rec: ActivityRecord) -> str:
    return member(rec["id"], activity_task_key(rec))


def arm(registry: ProcessRegistry, records: list[ActivityRecord], now: int) -> None:
    """Deadlines of the attempts just taken that have a heartbeat or start-to-close timeout."""
    deadlines = [(kind, claim_of(r), now + int(r[kind]))  # type: ignore[literal-required]
                 for r in records for kind in ("hb", "stc") if r.get(kind)]
    registry.arm(deadlines)


def disarm(registry: ProcessRegistry, records: list[ActivityRecord]) -> None:
    registry.disarm([claim_of(r) for r in records if r.get("hb") or r.get("stc")])


def previous_details(registry: ProcessRegistry, rec: ActivityRecord) -> Any:
    """The last heartbeat details of this call's earlier attempt (None without): read for calls
    with a heartbeat timeout and for retries only, so other attempts cost no round trip."""
    if not (rec.get("hb") or rec.get("attempt", 1) > 1):
        return None
    raw = registry.heartbeat_details(rec["id"], details_field(rec))
    return unpack_value(raw) if raw is not None else None


class Heartbeat:
    """``ctx.heartbeat`` of one attempt."""

    def __init__(self, registry: ProcessRegistry, rec: ActivityRecord, clock: Callable[[], int],
                 check: Callable[[Any], Any]) -> None:
        self.registry, self.rec, self.clock, self.check = registry, rec, clock, check
        self.timeout_ms = int(rec.get("hb") or 0)
        self.every = (self.timeout_ms / 4000) if self.timeout_ms else 2.0
        self.field = details_field(rec)
        self._last = 0.0
        self._pending: Any = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self, details: Any = None) -> None:
        now = time.monotonic()
        with self._lock:
            if details is not None:
                self._pending = self.check(details)
            wait = self.every - (now - self._last)
            if wait > 0:
                # Throttled: the latest details go out when the quarter is over, even if no other
                # heartbeat comes (an activity that hangs right after its last heartbeat).
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._later)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = now
        self.flush(beat=True)

    def _later(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        try:
            self.flush(beat=True)
        except Exception as exc:  # noqa: BLE001 - a heartbeat lost to Redis trouble: the next one retries
            log.warning("heartbeat of activity %r failed: %s", self.rec["name"], exc)

    def close(self) -> None:
        """The attempt ended: no late write of its heartbeat."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def flush(self, beat: bool = False) -> None:
        """Write the latest details (and, with ``beat``, move the heartbeat deadline on)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None and not beat:
            return
        packed = pack_value(pending) if pending is not None else None
        deadline = self.clock() + self.timeout_ms if self.timeout_ms and beat else None
        self.registry.heartbeat(claim_of(self.rec), deadline, self.rec["id"], self.field, packed)


def fail_timed_out(host: Any, now: int) -> int:
    """Fail the attempts whose heartbeat or start-to-close deadline ran out; how many were failed.
    ``host``: the duties (store, clock, a way to wake the instance)."""
    failed = 0
    for kind, claim in host.store.liveness.due_deadlines(now):
        instance_id, key = split_member(claim)
        meta = host.store.get_meta(instance_id)
        if meta is None or meta.is_terminal or not host.store.task_outstanding(instance_id, key):
            continue
        action = (host.scheduled_actions(meta) or {}).get(key)
        what = f"activity {action.name!r} (task {key}, attempt {action.attempt})" if action else f"task {key}"
        if kind == "hb":
            limit = (action.heartbeat_ms or 0) / 1000 if action else 0
            message = f"{what} of {instance_id} sent no heartbeat for {limit:g} s (heartbeat_timeout)"
        else:
            limit = (action.start_to_close_ms or 0) / 1000 if action else 0
            message = f"{what} of {instance_id} ran {limit:g} s since it started (start_to_close_timeout)"
        log.warning("%s; failing the attempt", message, extra={"instance_id": instance_id})
        failure = FailureDetails(message, TIMEOUT_ERRORS[kind])
        event = TaskFailed(ts=now, seq=int(key.rsplit(".", 1)[1]), failure=failure)
        code = host.store.deliver(instance_id, event, token=task_token(key), task_key=key, now=now, failure=True)
        failed += code > 0
        if code == 2:  # DeliverCode.WAKE
            host.publisher_wake(instance_id)
    return failed


__all__ = ["Heartbeat", "TIMEOUT_ERRORS", "arm", "details_field", "disarm", "fail_timed_out", "previous_details"]
