"""The Redis store: every read and atomic write the engine makes, and nothing else.

Layout and scripts are in ``keys`` and ``scripts``; this module turns Python values into script
arguments and script replies into records. It knows history events only as packed bytes plus the
few fields it must index, so the replay logic stays in the core.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import redis

from ..codec import (
    event_fingerprint,
    pack_event,
    pack_events,
    pack_script_args,
    pack_value,
    unpack_event,
    unpack_events,
)
from ..core.history import HistoryEvent, HistoryFormatError
from ..core.vocabulary import (
    EAGER_MARK,
    START_KEY,
    Status,
    member,
    split_member,
    task_token,
)
from ..core.vocabulary import task_key as make_task_key
from .connection import connect
from .keys import DEFAULT_SHARDS, KeySchema, ShardKeys, check_shard_count, validate_instance_id
from .liveness import ProcessRegistry
from .records import STALLED_FIELD, InstanceMeta, activity_task_key, new_run_id
from .scripts import CommitCode, CreateCode, DeliverCode, FireTimerCode, PurgeCode, ReleaseCode, Scripts
from .step_io import Commit, CommitResult, InboxEntry, Seed, Snapshot

# The deliver scripts' codes under the names callers have used (scripts.DeliverCode / FireTimerCode).
UNKNOWN, FINISHED, DUPLICATE, STORED, WAKE = (DeliverCode.UNKNOWN, DeliverCode.FINISHED, DeliverCode.DUPLICATE,
                                             DeliverCode.STORED, DeliverCode.WAKE)
KEY_REUSED = DeliverCode.KEY_REUSED
ALREADY_FIRED = FireTimerCode.ALREADY_FIRED


DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000


class ShardCountError(ValueError):
    """The store's recorded shard count and this process's setting disagree (or the store predates shards)."""


def _text(value: Any) -> str:
    """A Redis reply as text (this store's client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _hash(raw: Any) -> dict[bytes, bytes]:
    """A hash reply with bytes keys and values (HGETALL, or a script's flat [field, value, ...])."""
    if isinstance(raw, dict):
        return cast(dict[bytes, bytes], raw)  # this store's client does not decode replies
    return dict(zip(raw[::2], raw[1::2]))


def _stream(raw: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE entries as redis-py parses them."""
    return [(eid, fields) for eid, fields in (raw or [])]


def _entries(raw: list[list[Any]]) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Stream entries as a script returns them (``[id, [field, value, ...]]``) in redis-py's XRANGE shape."""
    return [(eid, dict(zip(flat[::2], flat[1::2]))) for eid, flat in raw]


def _decode_history(key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[HistoryEvent]:
    """Events of history stream entries; an undecodable entry raises ``HistoryFormatError`` naming it."""
    events: list[HistoryEvent] = []
    for eid, fields in entries:
        try:
            events.extend(unpack_events(fields[b"e"]))
        except (HistoryFormatError, KeyError) as exc:
            why = "has no field 'e'" if isinstance(exc, KeyError) else str(exc)
            raise HistoryFormatError(f"history entry {_text(eid)} of {key} is malformed: {why}") from exc
    return events


def _decode_inbox(key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[InboxEntry]:
    out = []
    for eid, fields in entries:
        try:
            out.append(InboxEntry(_text(eid), fields[b"t"].decode(), unpack_event(fields[b"e"])))
        except (HistoryFormatError, KeyError, UnicodeDecodeError) as exc:
            why = f"has no field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise HistoryFormatError(f"inbox entry {_text(eid)} of {key} is malformed: {why}") from exc
    return out


class RedisStore:
    """All Redis access of the engine. Thread-safe (redis-py pools connections); fork-safe."""

    def __init__(self, client: redis.Redis, prefix: str = "orch", shards: int | None = None) -> None:
        """``shards``: the shard count this process expects; None takes the store's (16 for a new store)."""
        self.redis = client
        self.wanted_shards = None if shards is None else check_shard_count(shards)
        self.keys = KeySchema(prefix, self._recorded_shards)
        self.prefix = prefix
        self.scripts = Scripts(client)
        # A Redis Cluster client: scripts are not pipelined (see deliver_many, claim_stale).
        self.cluster = isinstance(client, redis.RedisCluster)
        self.liveness = ProcessRegistry(client, self.keys, self.scripts)
        # How long a finished top-level instance is kept before retention purges it (ms; 0 keeps it),
        # unless set for its workflow with set_retention. The engine's and client's: settings.retention.
        self.retention_ms = DEFAULT_RETENTION_MS
        # The shards this process's pollers and sweepers walk (worker/shardplan.py); None: all.
        self.polled_shards: list[int] | None = None
        self.liveness.polled = self._polled

    @classmethod
    def from_url(cls, url: str, prefix: str = "orch", shards: int | None = None, **kwargs: Any) -> RedisStore:
        return cls(connect(url, **kwargs), prefix, shards)  # its errors name the URL (store/connection.py)

    def _recorded_shards(self) -> int:
        """The shard count the store recorded; the first process records its own (or the default).
        Refuses a store that records another count than this process was configured with, and a
        store written before shards (its instances would be invisible)."""
        key = self.keys.shard_count
        raw = self.redis.get(key)
        if raw is None:
            legacy = f"{self.keys.prefix}:idx:all"
            if self.redis.exists(legacy):
                raise ShardCountError(f"the store under prefix {self.keys.prefix!r} holds instances in the layout "
                                      f"before shards ({legacy}); purge them or use another key_prefix "
                                      "(docs/operations.md, 'Shards')")
            self.redis.set(key, self.wanted_shards or DEFAULT_SHARDS, nx=True)
            raw = self.redis.get(key)
        try:
            recorded = check_shard_count(int(raw))  # type: ignore[arg-type]  # TypeError when None
        except (TypeError, ValueError) as exc:
            raise ShardCountError(f"the store's shard count {key} holds {raw!r}, not a shard count") from exc
        if self.wanted_shards is not None and self.wanted_shards != recorded:
            raise ShardCountError(f"this process is configured with shards = {self.wanted_shards} but the store "
                                  f"under prefix {self.keys.prefix!r} was created with {recorded} ({key}); the count "
                                  f"is fixed for a store's life: set shards to {recorded} or leave it unset")
        return recorded

    # -- instances ------------------------------------------------------------------------------
    def create_instance(
        self,
        instance_id: str,
        name: str,
        app: str,
        started: HistoryEvent,
        input: Any,
        now: int,
        start_at: int = 0,
        replace: bool = False,
        parent: str = "",
        parent_key: str = "",
        parent_app: str = "",
        parent_run: str = "",
        step_message: tuple[str, bytes] | None = None,
        seed: Seed | None = None,
        run: str | None = None,
        priority: int | None = None,
    ) -> tuple[int, str]:
        """Returns (code, status): 2 created and due now, 1 created (scheduled), 0 same child
        already exists, -1 the id is taken (status of the existing instance).

        For a child, the same parent + ``parent_run`` (the parent's creation time) + ``parent_key``
        (``<gen>.<seq>`` of the call) is the same call, republished: code 0. A finished child of any
        other call of that parent (a replaced run, an earlier generation, the same explicit id called
        again) is started over; a running one, or another parent's instance, is code -1.

        ``step_message`` (queue key, message): pushed by the same script when the code is 2, so the
        caller need not publish the first step (the broker must be this Redis).

        ``seed``: create it RUNNING at version 1, already holding that history, inbox and timers (a
        rerun), instead of PENDING with ``started`` in its inbox.

        Every create starts a new run: ``run`` (default: a fresh ``records.new_run_id()``) is stored as
        the instance's run id, which its task keys and wake tokens carry (core/vocabulary.py).
        ``priority`` (0-9, core/flow.py) is recorded for its steps and activities (None: the default)."""
        validate_instance_id(instance_id)
        run = run or new_run_id()
        k = self.keys.instance(instance_id)
        blob = {
            "run": run,
            "name": name,
            "app": app,
            "input": pack_value(input),
            "now": now,
            "start_at": start_at,
            "replace": replace,
            "started": pack_event(started),
            "parent": parent,
            "parent_key": parent_key,
            "parent_app": parent_app,
            "parent_run": parent_run,
            "push_message": step_message[1] if step_message else "",
            "prio": "" if priority is None else str(priority),
        }
        if seed is not None:
            blob["seed"] = {
                "batch": pack_events(seed.history) if seed.history else "", "fields": seed.fields,
                "tasks": [make_task_key(run, 0, seq) for _, seq in seed.timers],
                "timers": [item for fire_at, seq in seed.timers
                           for item in (fire_at, member(instance_id, make_task_key(run, 0, seq)))],
                "inbox": [pack_event(e) for e in seed.inbox],
            }
        first = Status.RUNNING if seed is not None else Status.PENDING
        push_queue = step_message[0] if step_message else None
        replacing: tuple[str, str] | None = None
        while True:
            blob["old_name"], blob["old_status"] = replacing or ("", "")
            reply = self.scripts.create(k, instance_id, pack_script_args(blob), name=name, first_status=first,
                                        replacing=replacing, push_queue=push_queue)
            if reply.code != CreateCode.NEEDS_KEYS:
                return int(reply.code), reply.status
            replacing = (reply.name, reply.status)  # the finished instance it replaces: unindex that one

    def deliver(
        self,
        instance_id: str,
        event: HistoryEvent,
        *,
        token: str,
        task_key: str = "",
        now: int,
        control: bool = False,
        failure: bool = False,
        idempotency_key: str = "",
    ) -> int:
        """Put ``event`` in the instance's inbox; see the codes at the top of this module. With an
        ``idempotency_key`` the instance has already received, nothing is stored: ``DUPLICATE`` when
        it came with an event of the same name, ``KEY_REUSED`` when with another name."""
        return int(self._deliver_call(instance_id, event, token, task_key, now, control, failure, idempotency_key, ""))

    def deliver_and_load(self, instance_id: str, event: HistoryEvent, *, token: str, task_key: str = "",
                         now: int, failure: bool = False,
                         after_version: int | None = None) -> tuple[int, Snapshot | None]:
        """``deliver``, and when it wakes the instance, also what ``load(instance_id, after_version)``
        would return, read in the same atomic script (the caller runs the step it woke)."""
        reply = self._deliver_call(instance_id, event, token, task_key, now, False, failure, "",
                                   "-" if after_version is None else str(after_version))
        if not isinstance(reply, list):
            return int(reply), None
        code, flat_meta, hist, inbox = reply
        k = self.keys.instance(instance_id)
        raw_meta = _hash(flat_meta)
        snapshot = Snapshot(InstanceMeta.from_hash(instance_id, raw_meta), _decode_history(k.hist, _entries(hist)),
                            _decode_inbox(k.inbox, _entries(inbox)), after_version)
        return int(code), snapshot

    def deliver_many(self, items: list[tuple[str, HistoryEvent, str, str, bool]], now: int) -> list[int]:
        """Several task results ``(instance id, event, token, task key, failure)`` in one round trip
        (pipelined, each its own atomic DELIVER); their codes in order."""
        if self.cluster:  # redis-py's cluster pipeline refuses EVALSHA: one call each
            return [int(self._deliver_call(i, event, token, key, now, False, failure, "", ""))
                    for i, event, token, key, failure in items]
        pipe = self.redis.pipeline(transaction=False)
        for instance_id, event, token, task_key, failure in items:
            self._deliver_call(instance_id, event, token, task_key, now, False, failure, "", "", client=pipe)
        return [int(code) for code in pipe.execute()]

    def _deliver_call(self, instance_id: str, event: HistoryEvent, token: str, task_key: str, now: int,
                      control: bool, failure: bool, idempotency_key: str, load: str, client: Any = None) -> Any:
        fingerprint = event_fingerprint(event) if idempotency_key else ""
        return self.scripts.deliver(self.keys.instance(instance_id), instance_id, task_key=task_key, token=token,
                                    packed=pack_event(event), now=now, control=control, failure=failure,
                                    idempotency_key=idempotency_key, load=load, client=client,
                                    fingerprint=fingerprint)

    def get_meta(self, instance_id: str) -> InstanceMeta | None:
        raw = _hash(self.redis.hgetall(self.keys.instance(instance_id).meta))
        return InstanceMeta.from_hash(instance_id, raw) if raw else None

    def get_history(self, instance_id: str) -> list[HistoryEvent]:
        key = self.keys.instance(instance_id).hist
        return _decode_history(key, _stream(self.redis.xrange(key)))

    def load(self, instance_id: str, after_version: int | None = None) -> Snapshot | None:
        """Metadata, history and inbox read in one script, so they belong to the same version.

        With ``after_version``, only the history entries committed after that version are read
        (entry ids are ``<version>-1``): a worker that still holds the replayed workflow needs no more."""
        k = self.keys.instance(instance_id)
        reply = self.scripts.load(k, "-" if after_version is None else str(after_version))
        if not reply:
            return None
        flat_meta, hist, inbox = reply
        return Snapshot(InstanceMeta.from_hash(instance_id, _hash(flat_meta)), _decode_history(k.hist, _entries(hist)),
                        _decode_inbox(k.inbox, _entries(inbox)), after_version)

    def commit(self, instance_id: str, c: Commit) -> CommitResult:
        k = self.keys.instance(instance_id)
        blob = {
            "ver": c.version, "now": c.now, "status": c.status, "consumed": c.consumed,
            "batch": pack_events(c.events) if c.events else "",
            "fields": c.fields, "drop_fields": c.drop_fields, "tasks": c.tasks,
            "outbox": [item for pair in c.outbox.items() for item in pair],
            "timers": [item for pair in c.timers for item in pair],
            "children": c.children, "wait_mode": c.wait_mode, "wait": c.wait_tokens,
            "keep_wait": c.keep_wait, "reset": c.reset,
            "inbox_add": [item for pair in c.inbox_add for item in pair],
            "drop_tasks": c.drop_tasks, "activities": c.activities,
            "eager": activity_task_key(c.eager) if c.eager is not None else "",
            "claimer": c.claimer, "taker": c.taker, "completed": c.completed,
            "run": c.run, "gen": c.gen,
            "retention": self.retention_ms,
        }
        push_queues = list(c.pushes)
        blob["pushes"] = [c.pushes[q] for q in push_queues]
        name, old_status = c.name, c.old_status
        while True:
            blob["name"], blob["old_status"] = name or "", old_status or ""
            reply = self.scripts.commit(k, instance_id, pack_script_args(blob), name=name or "",
                                        old_status=old_status or c.status, status=c.status, push_queues=push_queues)
            if reply.code != CommitCode.NEEDS_KEYS:
                return CommitResult(ok=reply.code == CommitCode.COMMITTED, version=reply.version, rerun=reply.rerun,
                                    gone=reply.code == CommitCode.GONE, duplicate=reply.code == CommitCode.DUPLICATE)
            name, old_status = reply.name, reply.status  # a caller that did not say: now with the right keys

    def task_outstanding(self, instance_id: str, task_key: str) -> bool:
        """Does the instance still await the task ``<gen>.<seq>``?"""
        return bool(self.redis.hexists(self.keys.instance(instance_id).tasks, task_key))

    def activities_started(self, attempts: list[tuple[str, str]], now: int) -> list[bool]:
        """Activity attempts ``(instance id, task key)`` are starting: is each still awaited? Their
        redelivery clocks restart. One round trip however many."""
        if not attempts:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for instance_id, task_key in attempts:
            pipe.hexists(self.keys.instance(instance_id).tasks, task_key)
        by_shard: dict[str, dict[str, int]] = {}
        for i, k in attempts:
            by_shard.setdefault(self.keys.shard_of(i).activities, {})[member(i, k)] = now
        for key, stamps in by_shard.items():
            pipe.zadd(key, stamps, xx=True)
        return [bool(v) for v in pipe.execute()[:len(attempts)]]

    def eager_tasks(self, instance_id: str) -> list[str]:
        """Task keys of the instance's activities committed for eager execution and still awaited."""
        raw = self.redis.hgetall(self.keys.instance(instance_id).tasks)
        return sorted(_text(key) for key, mark in raw.items() if _text(mark) == EAGER_MARK)

    def forget_activity(self, member: str) -> None:
        """Drop an ``<id>|<gen>.<seq>`` entry the redelivery sweep found no longer awaited."""
        self.redis.zrem(self.keys.shard_of(split_member(member)[0]).activities, member)

    def child_ids(self, instance_id: str) -> list[str]:
        """Ids of the child instances the instance started (all generations)."""
        return sorted(_text(c) for c in self.redis.smembers(self.keys.instance(instance_id).children))

    def forget_child(self, parent_id: str, child_id: str) -> None:
        """Drop an id from the parent's children (it turned out to be another instance's)."""
        self.redis.srem(self.keys.instance(parent_id).children, child_id)

    def release(self, instance_id: str, claimer: str = "") -> bool:
        """Let go of an instance a step found nothing to do for; True if it must run again.
        ``claimer``: the releasing process, whose claim of the step goes with it."""
        k = self.keys.instance(instance_id)
        return self.scripts.release(k, instance_id, claimer) == ReleaseCode.AGAIN

    def purge(self, instance_id: str, *, name: str = "", status: str = "") -> tuple[int, list[str]]:
        """(1, child ids) when purged, (-1, []) unknown, (-2, [status]) still running, (-3, [status])
        finished but its last dispatches are not yet published. ``name`` / ``status``: what the
        caller knows of the instance (saves a round trip when right; a wrong guess writes nothing)."""
        k = self.keys.instance(instance_id)
        while True:
            reply = self.scripts.purge(k, instance_id, name=name, status=status)
            if reply.code == PurgeCode.NEEDS_KEYS:
                name, status = reply.name, reply.status
                continue
            if reply.code == PurgeCode.PURGED:
                return int(reply.code), list(reply.children)
            return int(reply.code), [reply.status] if reply.status else []

    # -- retention --------------------------------------------------------------------------------
    def set_retention(self, name: str, seconds: float | None) -> None:
        """Keep finished instances of workflow ``name`` for ``seconds`` (0: forever; None: the default).
        Written into every shard (COMMIT reads its own shard's copy); applies to instances finishing after."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            if seconds is None:
                pipe.hdel(shard.retention, name)
            else:
                pipe.hset(shard.retention, name, int(seconds * 1000))
        pipe.execute()

    def retention_of(self, name: str) -> int | None:
        """The retention (ms) set for workflow ``name``, or None for the default."""
        raw = self.redis.hget(self.keys.shards()[0].retention, name)
        return None if raw is None else int(raw)

    def due_expiries(self, now: int, limit: int = 100) -> list[list[str]]:
        """Per shard, the finished instances whose retention has passed, oldest first (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self._polled():
            pipe.zrangebyscore(shard.expire, "-inf", now, start=0, num=limit)
        return [[_text(i) for i in reply] for reply in pipe.execute()]

    def postpone_expiry(self, instance_id: str, until: int) -> None:
        """Try the purge of ``instance_id`` again at ``until`` (part of its tree is still running)."""
        self.redis.zadd(self.keys.shard_of(instance_id).expire, {instance_id: until}, xx=True)

    def drop_expiry(self, instance_id: str) -> None:
        self.redis.zrem(self.keys.shard_of(instance_id).expire, instance_id)

    # -- outbox ---------------------------------------------------------------------------------
    def read_outbox(self, instance_id: str) -> dict[str, bytes]:
        raw = _hash(self.redis.hgetall(self.keys.instance(instance_id).outbox))
        return {_text(key): value for key, value in raw.items()}

    def ack_outbox(self, instance_id: str, dispatch_ids: Iterable[str]) -> None:
        ids = list(dispatch_ids)
        if ids:
            self.scripts.ack_outbox(self.keys.instance(instance_id), instance_id, ids)

    def claim_stale(self, which: str, cutoff: int, now: int, limit: int = 500) -> list[str]:
        """Instances in ``ready`` or ``outbox`` marked before ``cutoff``: a step or a publish that a
        crash interrupted; or ``activities`` entries (``<id>|<gen>.<seq>``) silent since ``cutoff``.
        Re-stamped so concurrent sweepers split the work. Every shard, in one round trip (a cluster:
        one per shard)."""
        keys = [{"ready": shard.ready, "outbox": shard.outbox, "activities": shard.activities}[which]
                for shard in self._polled()]
        if self.cluster:
            return [entry for key in keys for entry in self.scripts.claim_stale(key, cutoff, now, limit)]
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            self.scripts.claim_stale(key, cutoff, now, limit, client=pipe)
        return [_text(entry) for reply in pipe.execute() for entry in reply]

    def _polled(self) -> list[ShardKeys]:
        shards = self.keys.shards()
        return shards if self.polled_shards is None else [shards[n] for n in self.polled_shards]

    # -- timers ---------------------------------------------------------------------------------
    def due_timers(self, now: int, limit: int = 1000) -> list[str]:
        """Due timer entries of every shard (one pipelined round trip), soonest first per shard."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self._polled():
            pipe.zrangebyscore(shard.timers, "-inf", now, start=0, num=limit)
        return [_text(m) for reply in pipe.execute() for m in reply]

    def fire_timer(self, member: str, event: HistoryEvent | None, now: int) -> tuple[str, int]:
        """Fire one timer index entry (``<id>|<gen>.<seq>`` or ``<id>|start``) at most once."""
        instance_id, key = split_member(member)
        k = self.keys.instance(instance_id)
        if key == START_KEY:
            code = self.scripts.fire_timer(k, instance_id, member=member, task_key="", token="", packed="", now=now)
        else:
            assert event is not None
            code = self.scripts.fire_timer(k, instance_id, member=member, task_key=key, token=task_token(key),
                                           packed=pack_event(event), now=now)
        return instance_id, int(code)

    def timer_entries(self, until: int | None = None) -> list[tuple[str, str, int]]:
        """``(instance id, task key, fire at ms)`` of every pending timer due by ``until`` (all: None),
        soonest first (the test toolkit's time skipping)."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            pipe.zrangebyscore(shard.timers, "-inf", "+inf" if until is None else until, withscores=True)
        out: list[tuple[str, str, int]] = []
        for raw in pipe.execute():
            for entry, score in raw:
                owner, key = split_member(_text(entry))
                out.append((owner, key, int(score)))
        return sorted(out, key=lambda e: e[2])

    def bring_timers_forward(self, timers: list[tuple[str, str]], now: int) -> int:
        """Make the timers ``(instance id, task key)`` due at ``now``; how many moved. Only earlier, and
        only timers still pending (ZADD XX LT): a fired timer is never re-armed, none is delayed."""
        pipe = self.redis.pipeline(transaction=False)
        for instance_id, key in timers:
            pipe.zadd(self.keys.shard_of(instance_id).timers, {member(instance_id, key): now}, xx=True, lt=True,
                      ch=True)
        return sum(pipe.execute())

    def next_timer_at(self) -> int | None:
        """When the soonest pending timer is due (ms), or None."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            pipe.zrange(shard.timers, 0, 0, withscores=True)
        due = [int(head[0][1]) for head in pipe.execute() if head]
        return min(due) if due else None

    def drop_timer(self, member: str) -> bool:
        """Remove one timer index entry (the poller drops malformed ones, which name no instance's
        shard: so from every shard)."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            pipe.zrem(shard.timers, member)
        return any(pipe.execute())

    # -- registry of workflow names served by worker pools ---------------------------------------
    def pool_heartbeat(self, app_id: str, now: int) -> None:
        """A pool of ``app_id`` is alive at ``now`` (written by every pool's sweeper)."""
        self.redis.hset(self.keys.pools, app_id, now)

    def live_apps(self, since: int) -> set[str]:
        """Apps with a pool heartbeat at or after ``since`` (ms)."""
        return {_text(app) for app, ts in self.redis.hgetall(self.keys.pools).items() if int(ts) >= since}

    def register_workflows(self, app_id: str, names: Iterable[str]) -> None:
        mapping: dict[Any, Any] = {name: app_id for name in names}
        if mapping:
            self.redis.hset(self.keys.workflows, mapping=mapping)

    def registered_workflows(self) -> dict[str, str]:
        """Workflow name -> the app id of the pools serving it, as they announced it."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.keys.workflows).items()}

    def mark_stalled(self, instance_id: str, version: str) -> None:
        """Record that a pool could not run the instance's step for want of its ``version``; only on
        an instance that still exists (a purge meanwhile must not leave a stray metadata hash)."""
        key = self.keys.instance(instance_id).meta
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if not pipe.exists(key):
                    return
                pipe.multi()
                pipe.hset(key, STALLED_FIELD, version)
                pipe.execute()
            except redis.WatchError:
                return  # changed meanwhile (a step ran, or it was purged): the next failing step marks it again

    def clear_stalled(self, instance_id: str) -> None:
        self.redis.hdel(self.keys.instance(instance_id).meta, STALLED_FIELD)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def workflow_app(self, name: str) -> str | None:
        value = self.redis.hget(self.keys.workflows, name)
        return _text(value) if value is not None else None

    # -- queries --------------------------------------------------------------------------------
    def list_instance_ids(self, status: str | None = None, name: str | None = None,
                          offset: int = 0, limit: int = 50) -> list[str]:
        """Newest first by creation time, merged over the shards."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            pipe.zrevrange(shard.index(status, name), 0, offset + limit - 1, withscores=True)
        merged = sorted(((score, _text(i)) for reply in pipe.execute() for i, score in reply), reverse=True)
        return [i for _, i in merged[offset:offset + limit]]
