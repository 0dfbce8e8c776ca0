"""The Redis key schema, in one place.

Per-instance keys share the hash tag ``{instance_id}`` so a per-instance script touches one slot:

=========================  ==========  ===========================================================
key                        type        holds
=========================  ==========  ===========================================================
``P:{id}:meta``            hash        name, app, status, input, output, custom status, failure,
                                       times, parent link, history version ``ver``, generation
                                       ``gen``, wait mode ``wmode`` / remaining ``wleft``
``P:{id}:hist``            stream      history, one entry per committed step (id ``<ver>-1``), field
                                       ``e`` = msgpack array of events
``P:{id}:inbox``           stream      events delivered but not yet consumed by a step: field ``t``
                                       is the wake token, ``e`` the packed event
``P:{id}:tasks``           hash        outstanding task keys ``<gen>.<seq>``; a delivery whose key is
                                       absent is a duplicate or late and is dropped
``P:{id}:wait``            set         wake tokens the blocked workflow waits on
``P:{id}:outbox``          hash        dispatches committed but not yet published
``P:{id}:children``        set         ids of child instances (for recursive terminate / purge)
``P:{id}:ekeys``           set         idempotency keys of the external events delivered (a second
                                       raise with a seen key is dropped); kept until purge
=========================  ==========  ===========================================================

Global keys: ``P:ready`` (zset: instances that need a step, by time marked), ``P:outbox`` (zset:
instances with unpublished dispatches), ``P:timers`` (zset: ``<id>|<gen>.<seq>`` by fire time, or
``<id>|start`` for a scheduled start), ``P:idx:all`` / ``P:idx:status:<S>`` / ``P:idx:name:<N>``
(zsets by creation time) and ``P:workflows`` (hash: workflow name -> app id of a pool serving it).
``P:idx:ns:<N>:<S>`` (zset by creation time: instances of workflow N in status S, so listing by name
and status reads one range) and ``P:idx:names`` (set: workflow names that have instances) are kept
by the same scripts on every create, status change and purge. ``P:pools`` (hash: app id -> last
heartbeat of a pool serving it, ms) lets sweepers leave steps for an app with no live pool queued once.
``P:metrics`` (hash: aggregated metric increments, see ``orchestrator.metrics``) is monitoring only.
``P:circuit:<app>:<activity>`` (hash: consecutive ``failures``, ``open_until`` ms, times ``opened``)
is the circuit breaker of one activity, shared by every pool of that app. ``P:activities`` (zset:
``<id>|<gen>.<seq>`` of every dispatched activity attempt whose result is not in yet, by its last
sign of life: dispatch, then start) lets sweepers publish again an attempt whose message was lost.

Liveness (worker/liveness.py): ``P:procs`` (zset: process id -> last heartbeat, ms) lists every
worker process; ``P:proc:<process id>`` (hash) is its record (app, host, pid, names it serves, the
broker delivery tags it holds). ``P:claims`` (hash, per shard: ``<id>|<run>.<gen>.<seq>`` of an
activity attempt, or ``<id>|step``, -> the process running it) is written by the script that takes
the work and cleared by the one that finishes it; ``P:lost`` (hash, per shard, same fields) counts
how often that work's process died holding it (poison protection). ``P:deadlines`` (zset, per shard:
``hb|<id>|<task key>`` / ``stc|<id>|<task key>`` -> when the attempt's heartbeat or start-to-close
timeout runs out, ms) and ``P:{id}:hbd`` (hash: ``<run>.<gen>|<activity>|<input digest>`` -> the
last heartbeat details, packed; expires a week after the last write) serve activity heartbeats.

Instance ids are restricted to characters that cannot break the hash tag or the timer member format
(the rule is ``core/identifiers.py``'s ``validate_instance_id``).

Every key a script touches is built here and handed to it in ``KEYS``: an instance's own keys and
its shard's (``InstanceKeys.shard``), in the orders the scripts' headers give (store/lua/). So when
the store moves to Redis Cluster with shards (an instance's keys and its shard's indexes in one hash
slot), this file is the one to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.identifiers import INSTANCE_ID_PATTERN, validate_instance_id
from ..core.vocabulary import STATUSES

INSTANCE_SUFFIXES = ("meta", "hist", "inbox", "tasks", "wait", "outbox", "children", "ekeys")


@dataclass(frozen=True)
class ShardKeys:
    """The work and listing indexes an instance's scripts touch besides its own keys.

    Today the store has one shard, whose keys are the historical global names; a sharded layout
    (issue 15) gives every shard its own, in its instances' hash slot, by changing only this file."""

    base: str  # what the shard's key names start with
    ready: str
    outbox: str
    timers: str
    activities: str
    claims: str
    lost: str
    deadlines: str
    index_all: str
    index_names: str
    _status: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def at(cls, base: str) -> ShardKeys:
        return cls(base, f"{base}:ready", f"{base}:outbox", f"{base}:timers", f"{base}:activities",
                   f"{base}:claims", f"{base}:lost", f"{base}:deadlines", f"{base}:idx:all", f"{base}:idx:names",
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


@dataclass(frozen=True)
class InstanceKeys:
    """Every key of one instance (``own()``, sharing the hash tag ``{id}``) and its shard's keys."""

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


__all__ = ["FlowKeys", "INSTANCE_ID_PATTERN", "INSTANCE_SUFFIXES", "InstanceKeys", "KeySchema", "ShardKeys",
           "validate_instance_id"]


class KeySchema:
    def __init__(self, prefix: str = "orch") -> None:
        if not prefix or any(c in prefix for c in "{}| "):
            raise ValueError(f"invalid key prefix {prefix!r}")
        self.prefix = prefix
        self._shard = ShardKeys.at(prefix)
        # Global singletons: read off the step's hot path.
        self.workflows = f"{prefix}:workflows"
        self.pools = f"{prefix}:pools"
        self.procs = f"{prefix}:procs"
        self.metrics = f"{prefix}:metrics"
        self.apilog = f"{prefix}:apilog"
        # The single shard's keys under their historical names (pollers, sweepers and listings).
        self.ready = self._shard.ready
        self.outbox = self._shard.outbox
        self.timers = self._shard.timers
        self.activities = self._shard.activities
        self.claims = self._shard.claims
        self.lost = self._shard.lost
        self.index_all = self._shard.index_all
        self.index_names = self._shard.index_names

    def shards(self) -> list[ShardKeys]:
        """Every shard (pollers, sweepers and listings walk them all)."""
        return [self._shard]

    def shard_of(self, instance_id: str) -> ShardKeys:
        return self._shard

    def instance(self, instance_id: str) -> InstanceKeys:
        base = f"{self.prefix}:{{{instance_id}}}"
        return InstanceKeys(f"{base}:meta", f"{base}:hist", f"{base}:inbox", f"{base}:tasks", f"{base}:wait",
                            f"{base}:outbox", f"{base}:children", f"{base}:ekeys", self.shard_of(instance_id))

    def status_index(self, status: str) -> str:
        return self._shard.status_index(status)

    def name_index(self, name: str) -> str:
        return self._shard.name_index(name)

    def name_status_index(self, name: str, status: str) -> str:
        return self._shard.name_status_index(name, status)

    def circuit(self, app_id: str, activity: str) -> str:
        """Hash ``failures`` / ``open_until`` / ``opened``: one activity's circuit breaker (worker/circuit.py)."""
        return f"{self.prefix}:circuit:{app_id}:{activity}"

    def heartbeat_details(self, instance_id: str) -> str:
        """Hash: the last heartbeat details of the instance's activity calls (worker/heartbeats.py)."""
        return f"{self.prefix}:{{{instance_id}}}:hbd"

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
