"""Flow control at run time: the gate work passes before it runs, and the duty that moves waiting work.

Declared limits (core/flow.py ``FlowPolicy``, on the registration) are enforced where the work is
about to run, by the pool that holds the user's key function:

* **Activities**: an attempt's message arrives; ``admit_activities`` reserves its rate-limit slot
  (a start later than now parks it in the delayed index and acks the message: the duty publishes it
  at its time) and takes a concurrency slot (none free: it waits in the scope's queue and the
  message is acked). After it ran, ``finished_activities`` gives the slot back; the release grants
  the oldest waiting attempt of the next key round-robin, whose message this pool publishes.
* **Workflows**: the first step of a PENDING instance passes ``admit_step`` the same way; a parked
  instance stays PENDING with the reason in its metadata (``flow_wait``) and off the ready index.
  The step that finishes it gives its slot back (``finished_instance``, from the step loop).

Nothing waits in a process: queued work is in Redis. A slot records its holder: the liveness
process id (worker/liveness.py) for an activity attempt, ``instance`` for a workflow (a workflow's
slot outlives any process: its steps go on in other pools). The duty (``sweep``) republishes
granted work that never started and releases slots whose work is over (a finished instance, an
attempt no longer awaited); ``release_process`` frees every slot a dead process held, called by
the liveness sweeper's ``on_process_lost`` hook when it reaps that process (registered below), so
the waiting work continues within seconds of a SIGKILL, not after a visibility timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from collections.abc import Callable
from typing import Any

from ..codec import pack_value, unpack_value
from ..core.flow import FlowPolicy, activity_scope, workflow_scope
from ..core.history import ExecutionStarted, ExecutionTerminated
from ..core.registry import Registry
from ..core.vocabulary import CONTROL_TOKEN, TERMINAL
from ..store.flow import FlowStore
from ..store.records import ActivityRecord, InstanceMeta, activity_task_key
from ..store.redis_store import RedisStore
from ..store.scripts import FlowCode
from ..store.step_io import Snapshot
from .liveness import on_process_lost
from .publisher import Publisher

log = logging.getLogger("orchestrator.flow")
WORKFLOW_HOLDER = "instance"  # a workflow's slot is held by its instance, not by a process
LEAK_CHECK_EVERY = 5  # sweeps between two checks that the work holding each slot is still going


def process_id() -> str:
    """A process id for a gate without liveness (``<host>:<pid>``, read each time: pools fork)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def attempt_member(rec: ActivityRecord) -> str:
    return f"{rec['id']}|{activity_task_key(rec)}"


def _limited(policy: FlowPolicy | None) -> bool:
    return policy is not None and (policy.limits_concurrency or policy.rate is not None)


def _key(policy: FlowPolicy, value: Any, what: str) -> str:
    try:
        return policy.key_of(value)
    except Exception as exc:  # noqa: BLE001 - the user's key function: its error is logged, the work runs on
        log.error("the concurrency_key of %s raised %s: %s; it counts under the key ''", what, type(exc).__name__,
                  exc)
        return ""


def publish_work(publisher: Publisher, work: bytes, flow: FlowStore | None = None, now: int = 0) -> None:
    """Publish queued or delayed work: an activity attempt (tracked again in the activities index
    when ``flow`` is given), or an instance's first step."""
    item = unpack_value(work)
    if item.get("k") == "a":
        if flow is not None:
            flow.track_attempt(item["id"], activity_task_key(item), now)
        publisher.send_activity(item, item["app"])
    else:
        publisher.send_priority_step(item["id"], item["app"], item.get("pr"))


_GATES: weakref.WeakSet[FlowGate] = weakref.WeakSet()


class FlowGate:
    def __init__(self, store: RedisStore, registry: Registry, publisher: Publisher, clock: Callable[[], int], *,
                 holder: Callable[[], str] = process_id, process_expiry_ms: int = 10_000) -> None:
        """``holder``: the id of this process that activity slots record (the liveness id in a pool);
        ``process_expiry_ms``: a holder silent this long is dead (the setting process_expiry)."""
        self.process_expiry_ms = process_expiry_ms
        self.store = store
        self.flow = FlowStore.of(store)
        self.registry = registry
        self.publisher = publisher
        self.clock = clock
        self.holder = holder
        self._sweeps = 0
        _GATES.add(self)

    # -- activities -------------------------------------------------------------------------------------
    def limits_activity(self, name: str) -> bool:
        return _limited(self.registry.activity_flow(name))

    def admit_activities(self, records: list[ActivityRecord]) -> list[ActivityRecord]:
        """The attempts that may run now; the others wait in the store (their messages are done)."""
        return [rec for rec in records if self._admit_activity(rec)]

    def _admit_activity(self, rec: ActivityRecord) -> bool:
        policy = self.registry.activity_flow(rec["name"])
        if policy is None or not _limited(policy):
            return True
        scope, member, now = activity_scope(rec["name"]), attempt_member(rec), self.clock()
        key = _key(policy, rec["input"], f"activity {rec['name']!r}")
        if policy.rate is not None and "rt" not in rec:
            if self.flow.delayed_until(scope, member) is not None:
                return False  # a second copy (a redelivery) of an attempt already waiting for its slot
            at = self.flow.reserve(scope, key if policy.rate_per_key else "", now, policy.rate, policy.period_ms)
            rec = {**rec, "rt": at}
            if at > now:
                self.flow.delay(scope, member, at, pack_value(rec))
                self.flow.untrack_attempt(rec["id"], activity_task_key(rec))
                return False
        if not policy.limits_concurrency:
            return True
        me = self.holder()
        code, other = self.flow.acquire(scope, member, key, me, now, global_limit=policy.concurrency,
                                        key_limit=policy.key_concurrency, work=pack_value(rec))
        if code == FlowCode.HELD:
            # A second copy of an attempt another process holds: a live holder runs it (this copy
            # is dropped, as liveness would skip it); a dead one's slot is taken over and it runs here.
            beat = self.flow.heartbeat(other)
            if beat is not None and beat >= now - self.process_expiry_ms:
                return False
            return self.flow.take_over(scope, member, other, me, now)
        if code == FlowCode.QUEUED:
            self.flow.untrack_attempt(rec["id"], activity_task_key(rec))
        return code == FlowCode.GRANTED

    def finished_activities(self, records: list[ActivityRecord]) -> None:
        """The attempts ran (or were skipped): give back their slots and publish what that grants."""
        for rec in records:
            policy = self.registry.activity_flow(rec["name"])
            if policy is not None and policy.limits_concurrency:
                # Only the holder's own: a skipped copy of an attempt another process runs gives nothing back.
                self._release(activity_scope(rec["name"]), attempt_member(rec), holder=self.holder())

    def _release(self, scope: str, member: str, holder: str = "") -> None:
        now = self.clock()
        for _granted, work in self.flow.release(scope, member, now, holder):
            publish_work(self.publisher, work, self.flow, now)

    # -- workflows ----------------------------------------------------------------------------------------
    def admit_step(self, snap: Snapshot) -> bool:
        """May this step run? Only the step that would first run a limited workflow's code (its
        ExecutionStarted still in the inbox: PENDING, or suspended before it started) can wait."""
        meta = snap.meta
        if not any(isinstance(e.event, ExecutionStarted) for e in snap.inbox):
            return True
        policy = self.registry.workflow_flow(meta.name)
        if policy is None or not _limited(policy):
            return True
        if any(isinstance(e.event, ExecutionTerminated) for e in snap.inbox):
            return True  # a terminate needs no slot: the step ends it (and its queue place is released)
        scope, now = workflow_scope(meta.name), self.clock()
        key = _key(policy, meta.input, f"workflow {meta.name!r}")
        # Suspend / resume seen now wait with it (applied by its first step); a control arriving
        # later (a terminate) makes the park refuse, and the step runs to apply it.
        controls = sum(1 for e in snap.inbox if e.token == CONTROL_TOKEN)
        work = pack_value({"k": "s", "id": meta.instance_id, "app": meta.app, "pr": meta.priority})
        if policy.rate is not None:
            at = meta.flow_rate_at
            if at is None:
                at = self.flow.reserve(scope, key if policy.rate_per_key else "", now, policy.rate, policy.period_ms)
                self.flow.mark(meta.instance_id, flow_rt=str(at))
            if at > now:
                reason = f"rate limit of workflow {meta.name!r} ({policy.rate} per {policy.per:g} s): starts at {at}"
                if not self.flow.park(meta.instance_id, scope, reason, controls):
                    return True
                self.flow.delay(scope, meta.instance_id, at, work)
                return False
        if not policy.limits_concurrency:
            return True
        code, _ = self.flow.acquire(scope, meta.instance_id, key, WORKFLOW_HOLDER, now,
                                    global_limit=policy.concurrency, key_limit=policy.key_concurrency, work=work)
        if code != FlowCode.QUEUED:  # a workflow's slot is its instance's, whichever process runs the step
            self.flow.mark(meta.instance_id, flow=scope, flow_wait="")
            meta.flow_scope = scope  # the step that finishes it gives the slot back
            return True
        reason = f"waiting for a concurrency slot of workflow {meta.name!r} (" + ", ".join(
            part for part in (f"{policy.concurrency} running at most" if policy.concurrency else "",
                              f"{policy.key_concurrency} per key, key {key!r}" if policy.key_concurrency else "")
            if part) + ")"
        if self.flow.park(meta.instance_id, scope, reason, controls):
            return False
        return True  # a terminate arrived meanwhile: the step applies it, then releases the queue place

    def finished_instance(self, meta: InstanceMeta) -> None:
        """An instance in a flow scope finished: its slot (or queue place) goes to the next."""
        if meta.flow_scope:
            self._release(meta.flow_scope, meta.instance_id)

    # -- the duty -----------------------------------------------------------------------------------------
    def publish_delayed(self) -> int:
        """Publish the rate-limited work whose time has come; how many."""
        sent = 0
        now = self.clock()
        for scope, member, work in self.flow.due_delayed(now):
            publish_work(self.publisher, work, self.flow, now)
            self.flow.done(scope, member)
            sent += 1
        return sent

    def sweep(self, stale_after_ms: int) -> int:
        """Repair what a crash left: republish granted work that never started, release slots whose
        work is over. Returns how many it touched."""
        now, touched = self.clock(), 0
        self._sweeps += 1
        check_over = self._sweeps % LEAK_CHECK_EVERY == 1  # a read per slot: not every sweep
        for scope in self.flow.scopes():
            for h in self.flow.holders(scope):
                if now - h.since <= stale_after_ms:
                    continue  # just taken: neither lost nor leaked
                if check_over and self._over(scope, h.member):
                    self._release(scope, h.member)  # its work ended without giving it back
                    touched += 1
                elif not h.holder:
                    work = self.flow.work_of(scope, h.member)
                    if work is not None and self.flow.restamp(scope, h, now):
                        publish_work(self.publisher, work, self.flow, now)  # granted, its message lost
                        touched += 1
        return touched

    def _over(self, scope: str, member: str) -> bool:
        """Is the work holding this slot over (so the slot leaked)?"""
        if scope.startswith("w:"):
            meta = self.store.get_meta(member)
            return meta is None or meta.status in TERMINAL
        instance_id, _, key = member.partition("|")
        return not self.store.task_outstanding(instance_id, key)

    def release_process(self, process: str) -> int:
        """Free every slot the dead process ``process`` held (the pool-liveness sweeper's hook);
        its attempts come back through their redelivery. Returns how many were freed."""
        freed = 0
        for scope in self.flow.scopes():
            for h in self.flow.holders(scope):
                if h.holder == process:
                    self._release(scope, h.member, holder=process)
                    freed += 1
        if freed:
            log.warning("released %d flow-control slot(s) held by dead process %s", freed, process)
        return freed



@on_process_lost
def _release_dead_holder(process: str, _info: Any) -> None:
    """The liveness sweeper reaped ``process``: its activity slots go to the waiting work."""
    done: set[int] = set()
    for gate in list(_GATES):
        if id(gate.flow) not in done:  # gates of one store share its FlowStore
            done.add(id(gate.flow))
            gate.release_process(process)


__all__ = ["FlowGate", "attempt_member", "process_id", "publish_work"]
