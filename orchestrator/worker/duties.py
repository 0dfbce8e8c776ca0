"""Background duties: what every pool runs besides its messages, all safe to run concurrently.

* **Timers**: fire the durable timers (and scheduled starts) that are due; the FIRE_TIMER script
  fires each at most once however many pollers race for it.
* **Sweeps**: republish what a crash left behind: outboxes not published, steps marked ready that
  never ran (for apps with a live pool), and activity attempts silent for ``visibility_timeout``
  (see worker/recovery.py for why kombu alone cannot bring those back).
* **Dead processes**: a worker process whose heartbeat expired (worker/liveness.py) is reaped:
  the broker messages it held go back on their queues, its claimed steps and activity attempts are
  published again, and the ``on_process_lost`` hooks run.
* **Eager redelivery**: a redelivered activity message may have been running eager activities,
  which have no message of their own: the ones still awaited are queued.

``BackgroundDuties`` is the thread a pool runs them in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..core.history import HistoryFormatError, TaskScheduled, TimerFired
from ..core.vocabulary import START_KEY, STEP_CLAIM, belongs_to, member, seq_of, split_member
from ..store.connection import StoreError
from ..store.records import InstanceMeta
from ..store.redis_store import RedisStore
from ..store.scripts import DeliverCode
from . import heartbeats
from .guards import parse_timer_member
from .liveness import LivenessHolder, process_gone_here, run_lost_hooks
from .publisher import Publisher
from .recovery import activity_record
from .shardplan import my_shards

log = logging.getLogger("orchestrator.engine")
worker_log = logging.getLogger("orchestrator.worker")


class Duties:
    def __init__(self, store: RedisStore, publisher: Publisher, clock: Callable[[], int], app_id: str, *,
                 stale_after_ms: int, redeliver_after_ms: int,
                 publish_outbox: Callable[[str, dict[str, bytes]], None],
                 liveness: LivenessHolder | None = None, broker: Any = None) -> None:
        self.store = store
        self.liveness = liveness
        self.broker = broker  # restores a dead process's messages (CeleryPublisher.restore_unacked)
        self.publisher = publisher
        self.clock = clock
        self.app_id = app_id
        self.stale_after_ms = stale_after_ms
        self.redeliver_after_ms = redeliver_after_ms
        self.publish_outbox = publish_outbox

    # -- timers ---------------------------------------------------------------------------------
    def fire_due_timers(self, limit: int = 1000) -> int:
        self.fire_attempt_deadlines()
        now, fired = self.clock(), 0
        for entry in self.store.due_timers(now, limit):
            parsed = parse_timer_member(entry)
            if parsed is None:
                # Not written by this engine: report it and take it out, or every poll would stop here.
                log.error("dropped malformed timer index entry %r (expected '<instance id>|<gen>.<seq>' "
                          "or '<instance id>|start')", entry)
                self.store.drop_timer(entry)
                continue
            key = parsed[1]
            event = None if key == START_KEY else TimerFired(ts=now, seq=seq_of(key))
            instance_id, code = self.store.fire_timer(entry, event, now)
            fired += code >= 0
            if code == DeliverCode.WAKE:
                self.publisher_wake(instance_id)  # the poller thread only publishes; steps run in the pool
        return fired

    def fire_attempt_deadlines(self) -> int:
        """Fail the activity attempts whose heartbeat or start-to-close timeout ran out (worker/heartbeats.py)."""
        return heartbeats.fail_timed_out(self, self.clock())

    def scheduled_actions(self, meta: InstanceMeta) -> dict[str, TaskScheduled] | None:
        return self._scheduled(meta)

    def publisher_wake(self, instance_id: str) -> None:
        meta = self.store.get_meta(instance_id)
        if meta is not None:
            self.publisher.send_step(instance_id, meta.app)

    # -- sweeps ---------------------------------------------------------------------------------
    def sweep(self) -> tuple[int, int]:
        """Republish what a crash left behind: unpublished outboxes and instances whose step never ran."""
        now = self.clock()
        cutoff = now - self.stale_after_ms
        self.store.pool_heartbeat(self.app_id, now)
        self.divide_shards()
        self.reap_dead_processes(now)
        outboxes = self.store.claim_stale("outbox", cutoff, now)
        for instance_id in outboxes:
            self.publish_outbox(instance_id, self.store.read_outbox(instance_id))
        ready = self.store.claim_stale("ready", cutoff, now)
        live = self._live_apps(now) if ready else set()
        for instance_id in ready:
            meta = self.store.get_meta(instance_id)
            # An app with no live pool still has the step message it was first sent, queued for the
            # pool to come; sending another every sweep would pile up copies for as long as it is down.
            if meta is not None and meta.app in live:
                self.publisher.send_step(instance_id, meta.app)
        self.redeliver_silent_activities(now)
        self.republish_lost_messages(now)
        return len(outboxes), len(ready)

    def divide_shards(self) -> list[int] | None:
        """Take this process's share of the shards among the live duty processes (worker/shardplan.py)."""
        if self.liveness is None:
            return None
        mine = self.liveness.get()
        mine.duties = True
        owners = self.store.liveness.duty_processes(mine.alive_since())
        shards = my_shards(mine.process_id, owners, self.store.keys.count)
        if shards != self.store.polled_shards:
            worker_log.info("this pool polls shards %s of %d (%d pools run duties)", shards, self.store.keys.count,
                            len(set(owners) | {mine.process_id}))
        self.store.polled_shards = shards
        return shards

    # -- dead processes (worker/liveness.py) ----------------------------------------------------
    def reap_dead_processes(self, now: int) -> int:
        """Reap every process whose heartbeat expired; how many this sweeper took."""
        if self.liveness is None:
            return 0
        mine = self.liveness.get()  # registers this process too
        registry = self.store.liveness
        reaped = 0
        for process_id in registry.stale(now - mine.expiry_ms):
            reaped += self.reap_one(process_id, now - mine.expiry_ms, "stopped heartbeating")
        return reaped

    def reap_one(self, process_id: str, dead_before: int, why: str) -> bool:
        """Reap one process whose heartbeat is older than ``dead_before`` (ms); False if it was not (any
        more): alive, or another sweeper took it."""
        taken = self.store.liveness.reap(process_id, dead_before)
        if taken is None:
            return False
        info, claims = taken
        restored = self._restore_messages(info, self.clock())
        log.warning("worker process %s (app %r, pid %s) %s; put back %d broker messages it held and publishing "
                    "again the %d steps and activity attempts it had claimed", process_id, info.app_id,
                    info.pid or "?", why, restored, len(claims), extra={"worker_process": process_id})
        self.hand_back(claims)
        run_lost_hooks(process_id, info)
        return True

    def reap_if_dead_here(self, process_id: str) -> bool:
        """Reap ``process_id`` at once if it ran on this host and its pid is gone (a prefork child that
        died: its pool requeued its message before its heartbeat could expire)."""
        if not process_gone_here(process_id):
            return False
        return self.reap_one(process_id, self.clock() + 1, "died (its pid is gone)")

    def _restore_messages(self, info: Any, now: int) -> int:
        restore = getattr(self.broker, "restore_unacked", None) if info.queues else None
        if restore is None:
            return 0
        live = self.store.liveness.processes(alive_since=self.liveness.get().alive_since() if self.liveness else now)
        keep = {tag for p in live for tag in p.held}
        # A message delivered in the last heartbeat or two may be a live process's not reported yet:
        # left alone (kombu's own restore, or the claim sweep, covers it).
        before = (now - 2 * self.liveness.get().interval * 1000) / 1000 if self.liveness else now / 1000
        try:
            return int(restore(info.queues, keep, before))
        except Exception as exc:  # noqa: BLE001 - the claims below still bring the work back
            worker_log.warning("could not put back the messages of dead process %s: %s", info.process_id, exc)
            return 0

    def hand_back(self, claims: list[tuple[str, int]]) -> int:
        """Publish again the steps and activity attempts of ``claims`` (``<id>|<task key>`` or
        ``<id>|step``, with how often each was lost); the taker fails one lost too often."""
        sent = 0
        by_instance: dict[str, list[str]] = {}
        for claim, _lost in claims:
            owner, key = split_member(claim)
            by_instance.setdefault(owner, []).append(key)
        # Sent whether or not the app has a live pool: a claimed message is in no queue any more.
        for instance_id, keys in by_instance.items():
            meta = self.store.get_meta(instance_id)
            if meta is None or meta.is_terminal:
                continue
            if STEP_CLAIM in keys:
                self.publisher.send_step(instance_id, meta.app)
                sent += 1
            awaited = [k for k in keys if k != STEP_CLAIM and belongs_to(k, meta.run, meta.generation)
                       and self.store.task_outstanding(instance_id, k)]
            if awaited:
                sent += self._redeliver(meta, awaited, None, why="was running in a process that died")
        return sent

    def _live_apps(self, now: int) -> set[str]:
        return self.store.live_apps(now - 3 * self.stale_after_ms) | {self.app_id}

    def redeliver_silent_activities(self, now: int) -> int:
        """Publish again the attempts silent for ``redeliver_after_ms``; returns how many."""
        if not self.redeliver_after_ms:
            return 0
        store = self.store
        silent = store.claim_stale("activities", now - self.redeliver_after_ms, now)
        live = self._live_apps(now) if silent else set()
        by_instance: dict[str, list[str]] = {}
        for entry in silent:
            owner, key = split_member(entry)
            by_instance.setdefault(owner, []).append(key)
        sent = 0
        for instance_id, keys in by_instance.items():
            meta = store.get_meta(instance_id)
            awaited = [k for k in keys if meta is not None and not meta.is_terminal
                       and belongs_to(k, meta.run, meta.generation) and store.task_outstanding(instance_id, k)]
            for key in set(keys) - set(awaited):
                store.forget_activity(member(instance_id, key))
            if not awaited or meta is None:
                continue
            sent += self._redeliver(meta, awaited, live)
        return sent

    def republish_lost_messages(self, now: int) -> int:
        """Publish again the attempts dispatched ``stale_after`` ago that no process has taken while
        their app's queue is empty: kombu lost their message (a worker killed between fetching it
        and recording it unacknowledged). A copy still in some consumer's prefetch buffer is skipped
        when it arrives. How many were sent."""
        depth = getattr(self.broker, "queue_depth", None)
        if depth is None or not self.stale_after_ms:
            return 0
        entries = self.store.claim_stale("activities", now - self.stale_after_ms, now)
        unclaimed = [e for e, holder in zip(entries, self.store.liveness.holders(entries)) if holder is None]
        by_instance: dict[str, list[str]] = {}
        for entry in unclaimed:
            owner, key = split_member(entry)
            by_instance.setdefault(owner, []).append(key)
        empty: dict[str, bool] = {}
        sent = 0
        for instance_id, keys in by_instance.items():
            meta = self.store.get_meta(instance_id)
            if meta is None or meta.is_terminal:
                continue
            awaited = [k for k in keys if belongs_to(k, meta.run, meta.generation)
                       and self.store.task_outstanding(instance_id, k)]
            scheduled = self._scheduled(meta) if awaited else None
            for key in awaited:
                action = (scheduled or {}).get(key)
                if action is None:
                    continue
                app = action.app_id or meta.app
                if app not in empty:
                    try:
                        empty[app] = depth(app) == 0
                    except Exception:  # noqa: BLE001 - unknown depth: the visibility-timeout sweep covers it
                        empty[app] = False
                if empty[app]:
                    why = f"was never taken in {self.stale_after_ms / 1000:.0f} s while its queue is empty (lost)"
                    sent += self._redeliver(meta, [key], None, why=why)
        return sent

    def _redeliver(self, meta: InstanceMeta, awaited: list[str], live: set[str] | None, why: str = "") -> int:
        scheduled = self._scheduled(meta)  # once per instance, however many of its calls are silent
        if scheduled is None:
            return 0
        sent = 0
        for key in awaited:
            action = scheduled.get(key)
            if action is None:
                self.store.forget_activity(member(meta.instance_id, key))
                continue
            record = activity_record(meta, action)
            if live is not None and record["app"] not in live:
                continue  # its first message waits in the queue of an app with no pool yet
            reason = why or f"showed no sign of life for {self.redeliver_after_ms / 1000:.0f} s"
            log.warning("activity %s (task %s, attempt %s) of %s %s; publishing it again", action.name, key,
                        action.attempt, meta.instance_id, reason,
                        extra={"instance_id": meta.instance_id, "activity": action.name})
            self.publisher.send_activity(record, record["app"])
            sent += 1
        return sent

    def requeue_eager(self, instance_id: str) -> int:
        """Queue the instance's eager activities still awaited; returns how many.

        Called when a message that ran eager activities comes back redelivered: the process that ran
        it died (or held it past the visibility timeout), and an eager activity has no message of its
        own for kombu to bring back. A copy still running elsewhere makes this a duplicate run, as any
        redelivery can."""
        keys = self.store.eager_tasks(instance_id)
        meta = self.store.get_meta(instance_id) if keys else None
        scheduled = self._scheduled(meta) if meta is not None and not meta.is_terminal else None
        if not scheduled or meta is None:
            return 0
        sent = 0
        for key in keys:
            action = scheduled.get(key)
            if action is None:
                continue
            log.warning("activity %s (task %s, attempt %s) of %s was running eagerly under a message that came "
                        "back; queueing it", action.name, key, action.attempt, instance_id,
                        extra={"instance_id": instance_id, "activity": action.name})
            record = activity_record(meta, action)
            self.publisher.send_activity(record, record["app"])
            sent += 1
        return sent

    def _scheduled(self, meta: InstanceMeta) -> dict[str, TaskScheduled] | None:
        """The instance's TaskScheduled events of its current generation by task key; None if its history
        does not decode (its next step fails it with that error)."""
        try:
            history = self.store.get_history(meta.instance_id)
        except HistoryFormatError:
            return None
        return {meta.task_key(e.seq): e for e in history if isinstance(e, TaskScheduled)}


class EngineDuties(Protocol):
    """What ``BackgroundDuties`` calls (an ``Engine``, or ``Duties`` itself)."""

    def fire_due_timers(self) -> int: ...

    def sweep(self) -> tuple[int, int]: ...


class BackgroundDuties(threading.Thread):
    """Fires due durable timers and sweeps what crashes left behind. Every pool runs one; the store's
    scripts make concurrent pollers safe (a timer fires once, a sweep claim is taken once)."""

    def __init__(self, engine: EngineDuties, timer_interval: float, sweep_interval: float) -> None:
        super().__init__(name="orchestrator-duties", daemon=True)
        self.engine = engine
        self.timer_interval = timer_interval
        self.sweep_interval = sweep_interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        next_sweep = 0.0
        backoff = self.timer_interval
        while not self._stop_event.is_set():
            try:
                fired = self.engine.fire_due_timers()
                if time.monotonic() >= next_sweep:
                    self.engine.sweep()
                    next_sweep = time.monotonic() + self.sweep_interval
                backoff = self.timer_interval
                if fired:
                    continue
            except StoreError as exc:
                worker_log.warning("background duties: Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # noqa: BLE001 - keep the duty loop alive whatever one round hit
                worker_log.exception("background duties: unexpected error")
            self._stop_event.wait(backoff)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(5)


__all__ = ["BackgroundDuties", "Duties"]
