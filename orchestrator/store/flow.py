"""Flow control in the store: concurrency slots and their queues, rate-limit buckets, delayed work,
deduplication ids. The decisions are in the scripts (``lua/flow_*.lua``), so every pool shares them.

A *scope* is one limited workflow type or activity name (``w:<name>`` / ``a:<name>``, core/flow.py);
a *member* is one piece of work in it (an instance id, or ``<instance>|<task key>`` of an activity
attempt); its *work* is what to publish when a queued member is granted a slot (packed by the
caller: the store does not read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from .keys import KeySchema
from .scripts import FlowCode, FlowScripts

DELAY_SEPARATOR = "\x1f"  # between scope and member in the delayed index
LEASE_MS = 30_000  # delayed work claimed by a pool that died is claimed again after this


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass(frozen=True)
class Holder:
    member: str
    holder: str  # the process id holding it ("" while granted but not yet started)
    since: int
    key: str


class FlowStore:
    def __init__(self, client: redis.Redis, keys: KeySchema) -> None:
        self.redis = client
        self.keys = keys
        self.scripts = FlowScripts(client)
        self._known: set[str] = set()  # scopes this process has recorded in flow_scopes

    @classmethod
    def of(cls, store: Any) -> FlowStore:
        """The flow store beside a ``RedisStore`` (same client and key prefix), made once."""
        found = getattr(store, "_flow_store", None)
        if found is None:
            found = cls(store.redis, store.keys)
            store._flow_store = found
        return found

    # -- concurrency --------------------------------------------------------------------------------
    def acquire(self, scope: str, member: str, key: str, holder: str, now: int, *, global_limit: int | None,
                key_limit: int | None, work: bytes) -> tuple[FlowCode, str]:
        """GRANTED: a slot is held (run it); QUEUED (a release grants it and publishes ``work``); or
        HELD with the process that holds this member's slot already."""
        if scope not in self._known:
            self.redis.sadd(self.keys.flow_scopes, scope)
            self._known.add(scope)
        return self.scripts.acquire(self.keys.flow(scope), member, key, holder, now, global_limit or 0,
                                    key_limit or 0, work)

    def take_over(self, scope: str, member: str, old: str, new: str, now: int) -> bool:
        """Hand a slot from a dead holder to ``new``, iff ``old`` still holds it."""
        key = self.keys.flow(scope).held
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                current = pipe.hget(key, member)
                if current is None or _text(current).split("|", 1)[0] != old:
                    return False
                rest = _text(current).split("|", 2)[2]
                pipe.multi()
                pipe.hset(key, member, f"{new}|{now}|{rest}")
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def heartbeat(self, process_id: str) -> int | None:
        """The last heartbeat of a worker process (ms; worker/liveness.py), None if it has none."""
        score = self.redis.zscore(self.keys.procs, process_id)
        return int(score) if score is not None else None

    def release(self, scope: str, member: str, now: int, holder: str = "") -> list[tuple[str, bytes]]:
        """Give back ``member``'s slot (or its place in the queue); the work granted by it."""
        return self.scripts.release(self.keys.flow(scope), member, now, holder)[1]

    def scopes(self) -> list[str]:
        return sorted(_text(s) for s in self.redis.smembers(self.keys.flow_scopes))

    def holders(self, scope: str) -> list[Holder]:
        out = []
        for member, value in self.redis.hgetall(self.keys.flow(scope).held).items():
            holder, since, key = _text(value).split("|", 2)
            out.append(Holder(_text(member), holder, int(since or 0), key))
        return out

    def restamp(self, scope: str, h: Holder, now: int) -> bool:
        """Re-stamp a granted slot that has not started (before publishing its work again), iff it is
        still as read: False when its work started meanwhile or another sweeper took it."""
        key = self.keys.flow(scope).held
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                current = pipe.hget(key, h.member)
                if current is None or _text(current) != f"{h.holder}|{h.since}|{h.key}":
                    return False
                pipe.multi()
                pipe.hset(key, h.member, f"{h.holder}|{now}|{h.key}")
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def work_of(self, scope: str, member: str) -> bytes | None:
        value = self.redis.hget(self.keys.flow(scope).items, member)
        return _bytes(value) if value is not None else None

    def status(self, scope: str) -> dict[str, Any]:
        """Slots held and work waiting, overall and by key (the dashboard's and the CLI's view)."""
        k = self.keys.flow(scope)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(k.counts)
        pipe.hlen(k.waiting)
        pipe.zrangebylex(k.queue, "-", "+")
        counts, waiting, queue = pipe.execute()
        c = {_text(f): _text(v) for f, v in counts.items()}
        by_key: dict[str, dict[str, int]] = {}
        for field, value in c.items():
            if field.startswith("k:"):
                by_key.setdefault(field[2:], {"running": 0, "waiting": 0})["running"] = int(value)
        for entry in queue:
            text = _text(entry)
            length, _, rest = text.partition(":")
            key = rest[:int(length)] if length.isdigit() else rest
            by_key.setdefault(key, {"running": 0, "waiting": 0})["waiting"] += 1
        return {"scope": scope, "running": int(c.get("*", 0) or 0), "waiting": int(waiting),
                "limit": int(c.get("!global", 0) or 0) or None, "key_limit": int(c.get("!key", 0) or 0) or None,
                "by_key": by_key}

    # -- rate limits and delayed work ----------------------------------------------------------------
    def reserve(self, scope: str, key: str, now: int, rate: int, period_ms: int) -> int:
        """When the next start of ``scope``/``key`` may happen (ms): ``now`` if a token is free."""
        return self.scripts.rate(self.keys.flow(scope), key, now, rate, period_ms)

    def delay(self, scope: str, member: str, until: int, work: bytes) -> None:
        """Keep ``work`` until ``until``, then a pool's duty publishes it (``due_delayed``)."""
        entry = f"{scope}{DELAY_SEPARATOR}{member}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.flow_delayed_items, entry, work)
        pipe.zadd(self.keys.flow_delayed, {entry: until})
        pipe.execute()

    def delayed_until(self, scope: str, member: str) -> int | None:
        """When delayed work of ``member`` is to be published, or None when none is delayed."""
        score = self.redis.zscore(self.keys.flow_delayed, f"{scope}{DELAY_SEPARATOR}{member}")
        return int(score) if score is not None else None

    def due_delayed(self, now: int, limit: int = 500) -> list[tuple[str, str, bytes]]:
        """Claim the delayed work due by ``now`` for ``LEASE_MS`` (one pool takes each; a pool that dies
        holding it leaves it to be claimed again): (scope, member, work). ``done`` forgets it."""
        entries = self.scripts.claim(self.keys.flow_delayed, now, now + LEASE_MS, limit)
        if not entries:
            return []
        works = self.redis.hmget(self.keys.flow_delayed_items, entries)
        out = []
        for entry, work in zip(entries, works):
            scope, _, member = entry.partition(DELAY_SEPARATOR)
            if work is None:
                self.redis.zrem(self.keys.flow_delayed, entry)
                continue
            out.append((scope, member, _bytes(work)))
        return out

    def done(self, scope: str, member: str) -> None:
        """Delayed work published: forget it."""
        entry = f"{scope}{DELAY_SEPARATOR}{member}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.keys.flow_delayed, entry)
        pipe.hdel(self.keys.flow_delayed_items, entry)
        pipe.execute()

    def delayed_count(self) -> int:
        return int(self.redis.zcard(self.keys.flow_delayed))

    def next_delayed(self) -> int | None:
        head = self.redis.zrange(self.keys.flow_delayed, 0, 0, withscores=True)
        return int(head[0][1]) if head else None

    # -- activity attempts waiting ----------------------------------------------------------------
    def untrack_attempt(self, instance_id: str, task_key: str) -> None:
        """An attempt waits for flow control: out of the activities index (keys.py), so neither the
        redelivery sweeps publish it again nor its call shows as running; the flow queue or the
        delayed index holds it durably meanwhile."""
        self.redis.zrem(self.keys.shard_of(instance_id).activities, f"{instance_id}|{task_key}")

    def track_attempt(self, instance_id: str, task_key: str, now: int) -> None:
        """A waiting attempt is published again (granted a slot, or its rate-limit time came): back
        into the activities index, if it is still awaited."""
        if self.redis.hexists(self.keys.instance(instance_id).tasks, task_key):
            self.redis.zadd(self.keys.shard_of(instance_id).activities, {f"{instance_id}|{task_key}": now})

    # -- instances waiting before their first step -------------------------------------------------
    def park(self, instance_id: str, scope: str, reason: str, controls_seen: int = 1) -> bool:
        """Take a PENDING instance off the ready index while it waits (False: a control arrived
        since the caller saw ``controls_seen`` control entries in its inbox: run the step); its
        metadata says why (``flow_wait``) and which scope it belongs to (``flow``)."""
        return self.scripts.park(self.keys.instance(instance_id), instance_id, scope, reason, controls_seen)

    def mark(self, instance_id: str, **fields: str) -> bool:
        """Set flow fields of the instance's metadata (records.flow_fields); '' removes one."""
        return self.scripts.mark(self.keys.instance(instance_id), fields)

    # -- deduplication ids -----------------------------------------------------------------------------
    def claim_dedup(self, workflow: str, dedup_id: str, instance_id: str, replacing: str = "") -> str:
        """'' when ``dedup_id`` is now ``instance_id``'s; else the instance holding it."""
        return self.scripts.dedup(self.keys.dedup(workflow, dedup_id), instance_id, replacing)


__all__ = ["FlowStore", "Holder"]
