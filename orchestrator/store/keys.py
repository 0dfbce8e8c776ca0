"""The Redis key schema, in one place.

The store is split into a fixed number S of **shards** (``KeySchema.count``; 16 unless the store
recorded another number, see ``SHARD_COUNT_KEY``). An instance belongs to shard
``crc32(id) % S``; its own keys and its shard's work and listing indexes all carry the hash tag
``{s<N>}``, so they sit in one Redis Cluster hash slot and every script touches one slot only:

=========================  ==========  ===========================================================
key                        type        holds
=========================  ==========  ===========================================================
``P:{sN}:i:<id>:meta``     hash        name, app, status, input, output, custom status, failure,
                                       times, parent link, history version ``ver``, generation
                                       ``gen``, wait mode ``wmode`` / remaining ``wleft``, the
                                       one token ``wtok`` of a wait of one token
``P:{sN}:i:<id>:hist``     stream      history, one entry per committed step (id ``<ver>-1``), field
                                       ``e`` = msgpack array of events
``P:{sN}:i:<id>:inbox``    stream      events delivered but not yet consumed by a step: field ``t``
                                       is the wake token, ``e`` the packed event
``P:{sN}:i:<id>:tasks``    hash        outstanding task keys ``<gen>.<seq>``; a delivery whose key is
                                       absent is a duplicate or late and is dropped
``P:{sN}:i:<id>:wait``     set         wake tokens the blocked workflow waits on (absent while
                                       ``wtok`` holds a wait of one token)
``P:{sN}:i:<id>:outbox``   hash        dispatches committed but not yet published
``P:{sN}:i:<id>:children`` set         ids of child instances (for recursive terminate / purge)
``P:{sN}:i:<id>:ekeys``    hash        idempotency keys of the external events delivered (a second
                                       raise with a seen key is dropped); kept until purge
=========================  ==========  ===========================================================

Shard keys (``ShardKeys``), each ``P:{sN}:<what>``: ``ready`` (zset: instances that need a step, by
time marked), ``outbox`` (zset: instances with unpublished dispatches), ``timers`` (zset:
``<id>|<gen>.<seq>`` by fire time, or ``<id>|start`` for a scheduled start), ``activities`` (zset:
``<id>|<gen>.<seq>`` of every dispatched activity attempt whose result is not in yet, by its last
sign of life: a sweeper publishes again an attempt whose message was lost), ``expire`` (zset:
finished top-level instances by the time retention purges them), ``retention`` (hash: workflow
name -> retention ms set through the client, copied into every shard so that COMMIT reads it in
its own slot; 0 keeps forever), the listing indexes ``idx:all`` /
``idx:status:<S>`` / ``idx:name:<N>`` / ``idx:ns:<N>:<S>`` (zsets by creation time) and
``idx:names`` (set: workflow names that have instances in the shard). Listings and counts merge
the S shards (store/queries.py); pollers and sweepers walk them.

Global keys, none on a step's path: ``P:shards`` (the shard count, written once),
``P:workflows`` (hash: workflow name -> app id of a pool serving it), ``P:pools`` (hash: app id ->
last heartbeat of a pool serving it, ms), ``P:metrics`` (buffered metric increments),
``P:apilog`` (stream) and ``P:circuit:<app>:<activity>`` (hash: one activity's circuit breaker).

Liveness (worker/liveness.py): ``P:procs`` (zset: process id -> last heartbeat, ms) lists every
worker process; ``P:proc:<process id>`` (hash) is its record (app, host, pid, names it serves, the
broker delivery tags it holds). ``P:{sN}:claims`` (hash, per shard: ``<id>|<run>.<gen>.<seq>`` of an
activity attempt, or ``<id>|step``, -> the process running it) is written by the script that takes
the work and cleared by the one that finishes it; in the same hash, the claim's field + ``#lost``
counts how often that work's process died holding it (poison protection), so that one HDEL clears
both. ``P:{sN}:procs`` copies
``P:procs`` into each shard, so that the claim scripts read heartbeats in their own slot.
``P:{sN}:deadlines`` (zset, per shard: ``hb|<id>|<task key>`` / ``stc|<id>|<task key>`` -> when the
attempt's heartbeat or start-to-close timeout runs out, ms) and ``P:{sN}:i:<id>:hbd`` (hash:
``<run>.<gen>|<activity>|<input digest>`` -> the last heartbeat details, packed; expires a week
after the last write) serve activity heartbeats.

Instance ids are restricted to characters that cannot break the hash tag or the timer member format
(the rule is ``core/identifiers.py``'s ``validate_instance_id``).

Every key a script touches is built here and handed to it in ``KEYS``: an instance's own keys and
its shard's (``InstanceKeys.shard``), in the orders the scripts' headers give (store/lua/).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.identifiers import INSTANCE_ID_PATTERN, validate_instance_id
from ..core.vocabulary import STATUSES

INSTANCE_SUFFIXES = ("meta", "hist", "inbox", "tasks", "wait", "outbox", "children", "ekeys")
DEFAULT_SHARDS = 16  # a new standalone store's; a cluster wants more (docs/operations.md)
MAX_SHARDS = 4096


@dataclass(frozen=True)
class ShardKeys:
    """The work and listing indexes of one shard, all in its hash slot (tag ``{s<N>}``)."""

    number: int
    base: str  # what the shard's key names start with: ``<prefix>:{s<N>}``
    ready: str
    outbox: str
    timers: str
    activities: str
    claims: str
    procs: str  # the shard's copy of the process heartbeats, which its claim scripts read
    deadlines: str
    expire: str
    retention: str
    index_all: str
    index_names: str
    _status: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def at(cls, prefix: str, number: int) -> ShardKeys:
        base = f"{prefix}:{{s{number}}}"
        return cls(number, base, f"{base}:ready", f"{base}:outbox", f"{base}:timers", f"{base}:activities",
                   f"{base}:claims", f"{base}:procs", f"{base}:deadlines", f"{base}:expire",
                   f"{base}:retention", f"{base}:idx:all", f"{base}:idx:names",
                   {status: f"{base}:idx:status:{status}" for status in STATUSES})

    def status_index(self, status: str) -> str:
        key = self._status.get(status)
        return key if key is not None else f"{self.base}:idx:status:{status}"

    def name_index(self, name: str) -> str:
        return f"{self.base}:idx:name:{name}"

    def name_status_index(self, name: str, status: str) -> str:
        return f"{self.base}:idx:ns:{name}:{status}"

    def listing(self, name: str, status: str) -> tuple[str, str, str]:
        """(name index, status index, name x status index) of an instance of ``name`` in ``status``."""
        return self.name_index(name), self.status_index(status), self.name_status_index(name, status)

    def index(self, status: str | None, name: str | None) -> str:
        """The one listing index that holds exactly the instances with ``status`` and ``name`` (either may be None)."""
        if status and name:
            return self.name_status_index(name, status)
        if status:
            return self.status_index(status)
        if name:
            return self.name_index(name)
        return self.index_all


@dataclass(frozen=True)
class InstanceKeys:
    """Every key of one instance (``own()``) and its shard's keys, all in the shard's hash slot."""

    meta: str
    hist: str
    inbox: str
    tasks: str
    wait: str
    outbox: str
    children: str
    ekeys: str
    shard: ShardKeys

    def own(self) -> list[str]:
        return [self.meta, self.hist, self.inbox, self.tasks, self.wait, self.outbox, self.children, self.ekeys]

    all = own  # the name it had before shards


__all__ = ["DEFAULT_SHARDS", "FlowKeys", "INSTANCE_ID_PATTERN", "INSTANCE_SUFFIXES", "InstanceKeys", "KeySchema",
           "MAX_SHARDS", "ShardKeys", "shard_number", "validate_instance_id"]


def shard_number(instance_id: str, count: int) -> int:
    """The shard of an instance: stable across processes, machines and Python versions (CRC-32)."""
    return zlib.crc32(instance_id.encode()) % count


def check_shard_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"the shard count must be an integer from 1 to {MAX_SHARDS}, got {count!r}")
    return count


class KeySchema:
    """Key names of one store. ``shards``: the shard count, or a function that finds it (the store's
    record, read on first use, so that building a store makes no connection)."""

    def __init__(self, prefix: str = "orch", shards: int | Callable[[], int] = DEFAULT_SHARDS) -> None:
        if not prefix or any(c in prefix for c in "{}| "):
            raise ValueError(f"invalid key prefix {prefix!r}")
        self.prefix = prefix
        self._count: int | None = None
        self._resolve: Callable[[], int] | None = None
        if callable(shards):
            self._resolve = shards
        else:
            self._count = check_shard_count(shards)
        self._shards: list[ShardKeys] = []
        self._lock = threading.Lock()
        # Global singletons: read off the step's hot path.
        self.shard_count = f"{prefix}:shards"
        self.workflows = f"{prefix}:workflows"
        self.pools = f"{prefix}:pools"
        self.procs = f"{prefix}:procs"
        self.metrics = f"{prefix}:metrics"
        self.apilog = f"{prefix}:apilog"

    @property
    def count(self) -> int:
        """The number of shards (resolved once)."""
        if self._count is None:
            with self._lock:
                if self._count is None:
                    assert self._resolve is not None
                    self._count = check_shard_count(self._resolve())
        return self._count

    def shards(self) -> list[ShardKeys]:
        """Every shard (pollers, sweepers and listings walk them all)."""
        if not self._shards:
            self._shards = [ShardKeys.at(self.prefix, n) for n in range(self.count)]
        return self._shards

    def shard_of(self, instance_id: str) -> ShardKeys:
        return self.shards()[shard_number(instance_id, self.count)]

    def instance(self, instance_id: str) -> InstanceKeys:
        shard = self.shard_of(instance_id)
        base = f"{shard.base}:i:{instance_id}"
        return InstanceKeys(f"{base}:meta", f"{base}:hist", f"{base}:inbox", f"{base}:tasks", f"{base}:wait",
                            f"{base}:outbox", f"{base}:children", f"{base}:ekeys", shard)

    def circuit(self, app_id: str, activity: str) -> str:
        """Hash ``failures`` / ``open_until`` / ``opened``: one activity's circuit breaker (worker/circuit.py)."""
        return f"{self.prefix}:circuit:{app_id}:{activity}"

    def heartbeat_details(self, instance_id: str) -> str:
        """Hash: the last heartbeat details of the instance's activity calls (worker/heartbeats.py)."""
        return f"{self.shard_of(instance_id).base}:i:{instance_id}:hbd"  # in the instance's shard slot

    def process(self, process_id: str) -> str:
        """Hash: one worker process's record (worker/liveness.py)."""
        return f"{self.prefix}:proc:{process_id}"

    # -- schedules (core/schedule.py, store/schedules.py) -------------------------------------------
    # Every schedule key carries the hash tag {schedules}: one slot, so each schedule script is
    # single-slot on Redis Cluster. ``<P>:{schedules}:s:<id>`` (hash: spec JSON, revision ``rev``
    # and the state fields of ``ScheduleState.to_fields``), ``...:due`` (zset: id by when a pool must
    # tick it next; absent while paused or ended), ``...:all`` (zset: id by creation time).
    def schedule(self, schedule_id: str) -> str:
        return f"{self.prefix}:{{schedules}}:s:{schedule_id}"

    @property
    def schedules_due(self) -> str:
        return f"{self.prefix}:{{schedules}}:due"

    @property
    def schedules_all(self) -> str:
        return f"{self.prefix}:{{schedules}}:all"

    # -- flow control (worker/flow.py, store/flow.py) -----------------------------------------------
    def flow(self, scope: str) -> FlowKeys:
        """The keys of one limited scope (``a:<activity>`` or ``w:<workflow>``), all in its own slot."""
        base = f"{self.prefix}:{{flow:{scope}}}"
        return FlowKeys(base, f"{base}:held", f"{base}:counts", f"{base}:ring", f"{base}:items", f"{base}:waiting",
                        f"{base}:queue", f"{base}:rate")

    @property
    def flow_scopes(self) -> str:
        """Set: every scope that has had a concurrency slot (the sweeper walks them)."""
        return f"{self.prefix}:flow:scopes"

    @property
    def flow_delayed(self) -> str:
        """Zset: work delayed by a rate limit (member ``<scope>|<member>``) by when it may start."""
        return f"{self.prefix}:{{flowdelay}}:due"

    @property
    def flow_delayed_items(self) -> str:
        """Hash: the packed work of ``flow_delayed``'s members."""
        return f"{self.prefix}:{{flowdelay}}:items"

    def dedup(self, workflow: str, dedup_id: str) -> str:
        """String: the instance id started with this deduplication id (client.schedule_new_workflow)."""
        return f"{self.prefix}:dedup:{workflow}:{dedup_id}"


@dataclass(frozen=True)
class FlowKeys:
    """One limited scope's keys (store/lua/flow_*.lua):

    ``held`` (hash: member -> ``<key>|<holder pid>|<since ms>``; pid empty while granted but not yet
    started), ``counts`` (hash: concurrency key -> slots held, ``*`` -> all), ``ring`` (list: keys
    with waiting work, in round-robin order), ``items`` (hash: member -> the packed work), ``waiting``
    (hash: member -> its queue entry, for work queued for a slot), ``queue`` (zset, all scores 0,
    read by lex range: ``<len(key)>:<key>|<seq>|<member>``, so the oldest waiting work of one key is
    the first entry of its prefix), ``rate`` (hash: ``<key>:t`` tokens and ``<key>:at`` their time)."""

    base: str
    held: str
    counts: str
    ring: str
    items: str
    waiting: str
    queue: str
    rate: str
