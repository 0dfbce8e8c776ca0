"""The Lua scripts (``store/lua/*.lua``): every state change of an instance is one of them, so each is atomic.

One typed wrapper per script, each with its own result codes (an ``IntEnum``, written into the
script's header as ``CODE.<NAME>``, so Lua and Python name the same numbers). The wrappers take the
keys from ``keys.py``'s bundles and pass every one in ``KEYS``: no script builds a key name.

Arguments that are lists or maps travel as one msgpack blob (``cmsgpack`` in Redis; see
``codec.pack_script_args``). Wake-up protocol, shared by every script (``lua/prelude.lua``):

* a delivery (activity result, timer, event, control) is appended to the inbox with its wake token;
* it wakes the instance (adds it to ``ready``) only when the blocked workflow's wait is satisfied:
  any awaited token in ``any`` mode, the last one in ``all`` mode, a failure, or a control event;
* ``ZADD ready NX`` makes exactly one caller responsible for publishing the step (``WAKE``);
* a commit replaces the wait set and re-checks the inbox events that arrived during the step, so a
  delivery that raced with the step is never stranded.

A script that finds it was given the index keys of another name or status than the instance has
(a caller that did not know them) answers ``NEEDS_KEYS`` with the right ones before writing anything;
its wrapper asks again with those, so no caller needs an extra read to find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from importlib import resources
from typing import Any

import redis

from ..core.vocabulary import (
    CONTROL_TOKEN,
    EAGER_MARK,
    LOST_SUFFIX,
    MEMBER_SEPARATOR,
    START_KEY,
    STEP_CLAIM,
    TERMINAL,
    WAIT_ALL,
    Status,
)
from .keys import FlowKeys, InstanceKeys, ShardKeys


class DeliverCode(IntEnum):
    KEY_REUSED = -3  # an idempotency key the instance received with another event: nothing stored
    UNKNOWN = -1  # no such instance
    FINISHED = -2  # the instance has finished: nothing is delivered to it any more
    DUPLICATE = 0  # a result no longer awaited (delivered already, timed out) or a seen idempotency key
    STORED = 1
    WAKE = 2  # stored, and the caller must have the step run


class FireTimerCode(IntEnum):
    ALREADY_FIRED = -3  # another poller fired it
    UNKNOWN = -1
    FINISHED = -2
    DUPLICATE = 0
    STORED = 1
    WAKE = 2


class CreateCode(IntEnum):
    NEEDS_KEYS = -4
    TAKEN = -1  # the id belongs to another instance (or a running one)
    SAME_CALL = 0  # the same child call, published again: it exists already
    CREATED = 1  # created; its step is scheduled (a later start) or already queued
    DUE = 2  # created and due now: the caller publishes its step unless the script pushed it


class CommitCode(IntEnum):
    NEEDS_KEYS = -4
    GONE = -1  # purged meanwhile
    DUPLICATE = -2  # the activity result it carried is no longer awaited: nothing written
    CONFLICT = 0  # computed from a stale history version: nothing written
    COMMITTED = 1


class ReleaseCode(IntEnum):
    RELEASED = 0
    AGAIN = 1  # something arrived meanwhile: run another step


class TakeCode(IntEnum):
    NOT_AWAITED = 0  # delivered already, or the instance moved on: skip it
    TAKEN = 1  # claimed by the caller: run it
    BUSY = 2  # claimed by another process that is alive: it runs it, skip this copy
    LOST_LIMIT = 3  # its processes died holding it too often: the caller (now holding it) fails it


class PurgeCode(IntEnum):
    NEEDS_KEYS = -4
    PUBLISHING = -3  # finished, but its last dispatches are not yet published
    RUNNING = -2
    UNKNOWN = -1
    PURGED = 1


def _lua_table(codes: type[IntEnum]) -> str:
    return "{" + ", ".join(f"{c.name} = {c.value}" for c in codes) + "}"


def _vocabulary() -> str:
    """The statuses and tokens the scripts compare with, written from ``core.vocabulary``."""
    statuses = "".join(f"local {s.name} = '{s.value}'\n" for s in Status)
    terminal = ", ".join(f"[{Status(s).name}] = true" for s in sorted(TERMINAL))
    return (f"{statuses}local TERMINAL = {{{terminal}}}\n"
            f"local CONTROL_TOKEN, WAIT_ALL, EAGER_MARK = '{CONTROL_TOKEN}', '{WAIT_ALL}', '{EAGER_MARK}'\n"
            f"local MEMBER_SEPARATOR, START_KEY, STEP_CLAIM = '{MEMBER_SEPARATOR}', '{START_KEY}', '{STEP_CLAIM}'\n"
            f"local LOST_SUFFIX = '{LOST_SUFFIX}'\n"
            f"local DELIVERED = {_lua_table(DeliverCode)}\n")


def source(name: str, codes: type[IntEnum] | None = None, *, prelude: bool = True) -> str:
    """The text Redis runs for ``lua/<name>.lua``: the vocabulary, the script's codes, the prelude, the script."""
    lua = resources.files(__package__).joinpath("lua")
    parts = [_vocabulary()]
    if codes is not None:
        parts.append(f"local CODE = {_lua_table(codes)}\n")
    if prelude:
        parts.append(lua.joinpath("prelude.lua").read_text())
    parts.append(lua.joinpath(f"{name}.lua").read_text())
    return "\n".join(parts)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class CreateReply:
    code: CreateCode
    status: str  # the new instance's, or the existing one's
    name: str = ""  # with NEEDS_KEYS: the existing instance's name


@dataclass(frozen=True)
class CommitReply:
    code: CommitCode
    version: int = 0
    rerun: bool = False
    status: str = ""  # with NEEDS_KEYS: the instance's status and name
    name: str = ""


@dataclass(frozen=True)
class PurgeReply:
    code: PurgeCode
    status: str = ""
    name: str = ""
    children: tuple[str, ...] = ()


class Scripts:
    """The store's scripts registered on one client; one typed method per script."""

    def __init__(self, client: redis.Redis) -> None:
        self._create = client.register_script(source("create", CreateCode))
        self._deliver = client.register_script(source("deliver", DeliverCode))
        self._fire_timer = client.register_script(source("fire_timer", FireTimerCode))
        self._commit = client.register_script(source("commit", CommitCode))
        self._release = client.register_script(source("release", ReleaseCode))
        self._purge = client.register_script(source("purge", PurgeCode))
        self._load = client.register_script(source("load", prelude=False))
        self._ack_outbox = client.register_script(source("ack_outbox", prelude=False))
        self._claim_stale = client.register_script(source("claim_stale", prelude=False))
        self._circuit_failure = client.register_script(source("circuit_failure", prelude=False))
        self._take_attempts = client.register_script(source("take_attempts", TakeCode))
        self._take_step = client.register_script(source("take_step"))
        self._reap_process = client.register_script(source("reap_process"))
        self._pop_due = client.register_script(source("pop_due", prelude=False))

    def create(self, k: InstanceKeys, instance_id: str, blob: bytes, *, name: str, first_status: str,
               replacing: tuple[str, str] | None, push_queue: str | None) -> CreateReply:
        """``replacing``: (name, status) of the finished instance the caller expects to replace."""
        old_name, old_status = replacing or (name, first_status)
        keys = [*k.own(), k.shard.ready, k.shard.timers, k.shard.index_all, k.shard.index_names,
                *k.shard.listing(name, first_status), *k.shard.listing(old_name, old_status)]
        if push_queue:
            keys.append(push_queue)
        reply = self._create(keys=keys, args=[instance_id, blob])
        return CreateReply(CreateCode(int(reply[0])), _text(reply[1]), _text(reply[2]) if len(reply) > 2 else "")

    def deliver(self, k: InstanceKeys, instance_id: str, *, task_key: str, token: str, packed: bytes, now: int,
                control: bool, failure: bool, idempotency_key: str = "", load: str = "", client: Any = None,
                fingerprint: str = "") -> Any:
        """A ``DeliverCode``, or with ``load`` and a wake ``[code, meta, history, inbox]`` raw from Redis.
        With ``client`` a pipeline, queued on it (the caller reads the code from its results)."""
        return self._deliver(
            keys=[k.meta, k.inbox, k.tasks, k.wait, k.ekeys, k.hist, k.shard.activities, k.shard.ready,
                  k.shard.claims],
            args=[instance_id, task_key, token, packed, now, "1" if control else "0", "1" if failure else "0",
                  idempotency_key, load, fingerprint],
            client=client)

    def fire_timer(self, k: InstanceKeys, instance_id: str, *, member: str, task_key: str, token: str,
                   packed: bytes | str, now: int) -> FireTimerCode:
        reply = self._fire_timer(keys=[k.meta, k.inbox, k.tasks, k.wait, k.shard.timers, k.shard.activities,
                                       k.shard.ready, k.shard.claims],
                                 args=[instance_id, member, task_key, token, packed, now])
        return FireTimerCode(int(reply))

    def commit(self, k: InstanceKeys, instance_id: str, blob: bytes, *, name: str, old_status: str,
               status: str, push_queues: list[str]) -> CommitReply:
        keys = [k.meta, k.hist, k.inbox, k.tasks, k.wait, k.outbox, k.children, k.shard.ready, k.shard.outbox,
                k.shard.timers, k.shard.activities, k.shard.status_index(old_status),
                k.shard.name_status_index(name, old_status), k.shard.status_index(status),
                k.shard.name_status_index(name, status), k.shard.claims, k.shard.expire,
                k.shard.retention, *push_queues]
        code, first, second = self._commit(keys=keys, args=[instance_id, blob])
        if int(code) == CommitCode.NEEDS_KEYS:
            return CommitReply(CommitCode.NEEDS_KEYS, status=_text(first), name=_text(second))
        return CommitReply(CommitCode(int(code)), int(first), bool(second))

    def load(self, k: InstanceKeys, after: str) -> list[Any]:
        """[] for no such instance, else [flat meta, history entries, inbox entries] raw from Redis."""
        return list(self._load(keys=[k.meta, k.hist, k.inbox], args=[after]))

    def release(self, k: InstanceKeys, instance_id: str, claimer: str = "") -> ReleaseCode:
        return ReleaseCode(int(self._release(keys=[k.meta, k.inbox, k.shard.ready, k.shard.claims],
                                             args=[instance_id, claimer])))

    def purge(self, k: InstanceKeys, instance_id: str, *, name: str, status: str) -> PurgeReply:
        keys = [*k.own(), k.shard.ready, k.shard.outbox, k.shard.timers, k.shard.index_all, k.shard.index_names,
                *k.shard.listing(name, status), k.shard.expire]
        reply = self._purge(keys=keys, args=[instance_id, status, name])
        code = PurgeCode(int(reply[0]))
        rest = [_text(v) for v in reply[1:]]
        if code == PurgeCode.PURGED:
            return PurgeReply(code, children=tuple(rest))
        if code == PurgeCode.NEEDS_KEYS:
            return PurgeReply(code, rest[0], rest[1])
        return PurgeReply(code, rest[0] if rest else "")

    def ack_outbox(self, k: InstanceKeys, instance_id: str, dispatch_ids: list[str]) -> None:
        self._ack_outbox(keys=[k.outbox, k.shard.outbox], args=[instance_id, *dispatch_ids])

    def claim_stale(self, key: str, cutoff: int, now: int, limit: int, client: Any = None) -> list[str]:
        """With ``client`` a pipeline, queued on it (the caller reads the entries from its results)."""
        reply = self._claim_stale(keys=[key], args=[cutoff, now, limit], client=client)
        return [] if client is not None else [_text(v) for v in reply]

    def circuit_failure(self, key: str, now: int, threshold: int, cooldown_ms: int) -> int:
        """The open-until time (ms) when this failure opened the circuit, else 0."""
        return int(self._circuit_failure(keys=[key], args=[now, threshold, cooldown_ms]))

    def take_attempts(self, shard: ShardKeys, tasks_keys: list[str], me: str, now: int,
                      alive_since: int, lost_limit: int, attempts: list[tuple[str, str]]) -> tuple[list[TakeCode],
                                                                                                    list[str]]:
        """Claim activity attempts ``(instance id, task key)`` of one shard; (codes, holders of the busy)."""
        args: list[Any] = [me, now, alive_since, lost_limit]
        for instance_id, key in attempts:
            args += [instance_id, key]
        keys = [shard.procs, shard.claims, shard.activities, *tasks_keys]
        codes, holders = self._take_attempts(keys=keys, args=args)
        return [TakeCode(int(c)) for c in codes], [_text(h) for h in holders]

    def take_step(self, shard: ShardKeys, me: str, alive_since: int, instance_id: str,
                  force: bool) -> tuple[int, str]:
        """Claim the instance's step: (how many times in a row its process died holding it, the live
        process holding it when not ``force``: then it is not claimed, or '')."""
        count, other = self._take_step(keys=[shard.procs, shard.claims],
                                       args=[me, alive_since, instance_id, "1" if force else "0"])
        return int(count), _text(other)

    def reap_process(self, shard: ShardKeys, process_id: str, dead_before: int,
                     graceful: bool) -> list[tuple[str, int]] | None:
        """The work a dead (or departing) process held in one shard, with its lost counts; None if it
        is alive there (or that shard was reaped already)."""
        reply = self._reap_process(keys=[shard.procs, shard.claims],
                                   args=[process_id, dead_before, "1" if graceful else "0"])
        if not reply:
            return None
        held, counts = reply
        return [(_text(m), int(n)) for m, n in zip(held, counts)]

    def pop_due(self, key: str, now: int, limit: int, client: Any = None) -> list[str]:
        """With ``client`` a pipeline, queued on it (the caller reads the entries from its results)."""
        reply = self._pop_due(keys=[key], args=[now, limit], client=client)
        return [] if client is not None else [_text(v) for v in reply]



class ScheduleCode(IntEnum):
    MISSING = -2  # no such schedule
    EXISTS = -1  # create: the id is taken
    CONFLICT = 0  # advance: another pool ticked it first; nothing written
    DONE = 1


class ScheduleScripts:
    """The schedule scripts (``lua/schedule_*.lua``); every key in the {schedules} slot (keys.py)."""

    def __init__(self, client: redis.Redis) -> None:
        self._put = client.register_script(source("schedule_put", ScheduleCode, prelude=False))
        self._advance = client.register_script(source("schedule_advance", ScheduleCode, prelude=False))
        self._delete = client.register_script(source("schedule_delete", ScheduleCode, prelude=False))

    def put(self, key: str, due_index: str, all_index: str, schedule_id: str, *, create: bool, now: int,
            due: int | None, blob: bytes) -> ScheduleCode:
        return ScheduleCode(int(self._put(keys=[key, due_index, all_index],
                                          args=[schedule_id, "create" if create else "update", now,
                                                "" if due is None else due, blob])))

    def advance(self, key: str, due_index: str, schedule_id: str, *, rev: str, due: int | None,
                blob: bytes) -> ScheduleCode:
        return ScheduleCode(int(self._advance(keys=[key, due_index],
                                              args=[schedule_id, rev, "" if due is None else due, blob])))

    def delete(self, key: str, due_index: str, all_index: str, schedule_id: str) -> ScheduleCode:
        return ScheduleCode(int(self._delete(keys=[key, due_index, all_index], args=[schedule_id])))



class FlowCode(IntEnum):
    QUEUED = 0  # over a limit: it waits, and a release grants it
    GRANTED = 1  # a slot is held: run it now
    HELD = 2  # another process holds this member's slot (a second copy of its work)


class FlowScripts:
    """The flow-control scripts (``lua/flow_*.lua``); each touches one scope's slot (keys.py FlowKeys)."""

    def __init__(self, client: redis.Redis) -> None:
        self._acquire = client.register_script(source("flow_acquire", FlowCode, prelude=False))
        self._release = client.register_script(source("flow_release", prelude=False))
        self._rate = client.register_script(source("flow_rate", prelude=False))
        self._dedup = client.register_script(source("flow_dedup", prelude=False))
        self._claim = client.register_script(source("claim_stale", prelude=False))
        self._park = client.register_script(source("flow_park", prelude=False))
        self._mark = client.register_script(source("flow_mark", prelude=False))

    def acquire(self, k: FlowKeys, member: str, key: str, holder: str, now: int, global_limit: int, key_limit: int,
                work: bytes) -> tuple[FlowCode, str]:
        """(code, the other holder with HELD)."""
        reply = self._acquire(keys=[k.held, k.counts, k.ring, k.items, k.waiting, k.queue],
                              args=[member, key, holder, now, global_limit, key_limit, work])
        return FlowCode(int(reply[0])), _text(reply[1]) if len(reply) > 1 else ""

    def release(self, k: FlowKeys, member: str, now: int, holder: str = "") -> tuple[bool, list[tuple[str, bytes]]]:
        """(whether the member held or waited, the work granted: (member, packed work))."""
        reply = self._release(keys=[k.held, k.counts, k.ring, k.items, k.waiting, k.queue],
                              args=[member, now, holder])
        granted = [(_text(reply[i]), reply[i + 1]) for i in range(1, len(reply), 2)]
        return bool(int(reply[0])), granted

    def rate(self, k: FlowKeys, key: str, now: int, rate: int, period_ms: int) -> int:
        return int(self._rate(keys=[k.rate], args=[key, now, rate, period_ms]))

    def park(self, k: InstanceKeys, instance_id: str, scope: str, reason: str, controls_seen: int) -> bool:
        return bool(int(self._park(keys=[k.meta, k.inbox, k.shard.ready],
                                   args=[instance_id, scope, reason, controls_seen])))

    def mark(self, k: InstanceKeys, fields: dict[str, str]) -> bool:
        return bool(int(self._mark(keys=[k.meta], args=[item for pair in fields.items() for item in pair])))

    def claim(self, key: str, cutoff: int, lease_until: int, limit: int) -> list[str]:
        """CLAIM_STALE on the delayed index: take what is due, re-stamped to ``lease_until``."""
        return [_text(v) for v in self._claim(keys=[key], args=[cutoff, lease_until, limit])]

    def dedup(self, key: str, instance_id: str, replacing: str = "") -> str:
        return _text(self._dedup(keys=[key], args=[instance_id, replacing]))


__all__ = ["CommitCode", "CommitReply", "CreateCode", "CreateReply", "DeliverCode", "FireTimerCode", "FlowCode",
           "FlowScripts", "PurgeCode", "PurgeReply", "ReleaseCode", "ScheduleCode", "ScheduleScripts", "Scripts",
           "TakeCode", "source"]
