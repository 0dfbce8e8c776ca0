"""The process registry and work claims in Redis (the model is worker/liveness.py's docstring).

``ProcessRegistry`` is the store side: heartbeats and records of worker processes, the scripts
that take work (claiming it) and reap a dead process's claims, and the read API other parts use:
``live_processes()`` lists every live process with its app id and last heartbeat.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from ..core.vocabulary import STEP_CLAIM, split_member
from .keys import KeySchema, ShardKeys
from .scripts import Scripts, TakeCode


@dataclass(frozen=True)
class ProcessInfo:
    """One worker process as it registered itself, and its last heartbeat (ms)."""

    process_id: str
    app_id: str
    heartbeat: int
    host: str = ""
    pid: int = 0
    kind: str = ""  # "pool" (runs the consumer and the duties), "child" (a prefork child), "inproc"
    parent: str = ""  # the pool process a child belongs to
    started: int = 0
    workflows: dict[str, list[str]] = field(default_factory=dict)  # name -> versions ('' unversioned)
    activities: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # broker delivery tags of the messages it holds
    queues: list[str] = field(default_factory=list)
    work: list[str] = field(default_factory=list)  # claims: ``<id>|<task key>`` or ``<id>|step``

    @classmethod
    def from_record(cls, process_id: str, heartbeat: int, rec: dict[str, str]) -> ProcessInfo:
        def js(name: str, default: Any) -> Any:
            try:
                return json.loads(rec[name]) if name in rec else default
            except ValueError:
                return default
        return cls(process_id, rec.get("app", ""), heartbeat, rec.get("host", ""), int(rec.get("pid", "0") or 0),
                   rec.get("kind", ""), rec.get("parent", ""), int(rec.get("started", "0") or 0),
                   js("workflows", {}), js("activities", []), js("held", []), js("queues", []))

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "app_id": self.app_id, "host": self.host, "pid": self.pid,
                "kind": self.kind, "parent": self.parent, "started": self.started, "heartbeat": self.heartbeat,
                "workflows": self.workflows, "activities": self.activities, "queues": self.queues,
                "work": self.work}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_EVERY_BEAT = 1 << 62  # a dead_before later than any heartbeat: the shard's copy cannot veto the reap


class ProcessRegistry:
    def __init__(self, client: redis.Redis, keys: KeySchema, scripts: Scripts) -> None:
        self.redis, self.keys, self.scripts = client, keys, scripts
        self.polled: Callable[[], list[ShardKeys]] = keys.shards  # the store sets its own share

    # -- registration and heartbeats -------------------------------------------------------------
    def beat(self, process_id: str, record: dict[str, Any], now: int) -> None:
        """Register or refresh a process: its heartbeat and its record (values JSON-encoded unless str)."""
        mapping = {k: v if isinstance(v, str) else json.dumps(v) for k, v in record.items()}
        pipe = self.redis.pipeline(transaction=False)  # one round trip; several slots on a cluster
        pipe.zadd(self.keys.procs, {process_id: now})
        if mapping:
            pipe.hset(self.keys.process(process_id), mapping=mapping)  # type: ignore[arg-type]
        for shard in self.keys.shards():  # each shard's claim scripts read heartbeats in their own slot
            pipe.zadd(shard.procs, {process_id: now})
        pipe.execute()

    def mark_dead(self, process_id: str) -> None:
        """Date the process's heartbeat back to 0: the next sweep reaps it as dead."""
        self.redis.zadd(self.keys.procs, {process_id: 0}, xx=True)

    def deregister(self, process_id: str) -> list[tuple[str, int]]:
        """The process leaves (a graceful shutdown): its record goes, and the work it still held,
        which the caller hands back (not counted as lost)."""
        reaped = self.reap(process_id, 0, graceful=True)
        return reaped[1] if reaped else []

    def processes(self, alive_since: int | None = None, app_id: str | None = None) -> list[ProcessInfo]:
        """Every registered process (``alive_since``: only those with a heartbeat at or after it, ms;
        ``app_id``: only that app's), with the work it holds; newest heartbeat first."""
        raw: list[Any] = self.redis.zrevrangebyscore(self.keys.procs, "+inf",
                                                     "-inf" if alive_since is None else alive_since,
                                                     withscores=True)
        if not raw:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for pid, _ in raw:
            pipe.hgetall(self.keys.process(_text(pid)))
        records = pipe.execute()
        work: dict[str, list[str]] = {}
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            pipe.hgetall(shard.claims)
        for claims in pipe.execute():
            for m, holder in claims.items():
                work.setdefault(_text(holder), []).append(_text(m))
        out = []
        for (pid, score), rec in zip(raw, records):
            info = ProcessInfo.from_record(_text(pid), int(score), {_text(k): _text(v) for k, v in rec.items()})
            if app_id is not None and info.app_id != app_id:
                continue
            out.append(ProcessInfo(**{**info.__dict__, "work": sorted(work.get(info.process_id, []))}))
        return out

    def live_processes(self, now: int, expiry_ms: int) -> list[ProcessInfo]:
        """The processes whose heartbeat is younger than ``expiry_ms`` (issue 15's shard division reads this)."""
        return self.processes(alive_since=now - expiry_ms)

    def duty_processes(self, alive_since: int) -> list[str]:
        """Ids of the live processes that run background duties (their record says ``duties``)."""
        pids = [_text(p) for p in self.redis.zrangebyscore(self.keys.procs, alive_since, "+inf")]
        if not pids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for pid in pids:
            pipe.hget(self.keys.process(pid), "duties")
        return [pid for pid, flag in zip(pids, pipe.execute()) if flag in (b"1", "1")]

    def stale(self, dead_before: int, limit: int = 100) -> list[str]:
        """Ids of processes whose last heartbeat is older than ``dead_before`` (ms)."""
        return [_text(p) for p in self.redis.zrangebyscore(self.keys.procs, "-inf", f"({dead_before}",
                                                           start=0, num=limit)]

    def reap(self, process_id: str, dead_before: int,
             graceful: bool = False) -> tuple[ProcessInfo, list[tuple[str, int]]] | None:
        """Take a dead process's record and claims (once, whoever races): (its record, [(claim, times lost)])."""
        beat = self.redis.zscore(self.keys.procs, process_id)
        if beat is None or (not graceful and beat >= dead_before):
            return None
        claims: list[tuple[str, int]] = []
        reaped = False
        # The global heartbeat decides (mark_dead dates only it back): a shard's copy of a newer beat must
        # not keep that shard's claims from being reaped, or they would outlive the process's record.
        for shard in self.keys.shards():  # each shard's claims reaped by one sweeper, however many race
            reply = self.scripts.reap_process(shard, process_id, _EVERY_BEAT, graceful)
            if reply is not None:
                reaped = True
                claims += reply
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.process(process_id))
        pipe.zrem(self.keys.procs, process_id)
        raw, removed = pipe.execute()
        if removed:
            self.redis.delete(self.keys.process(process_id))
        if not (reaped or removed):
            return None
        rec = {_text(k): _text(v) for k, v in raw.items()} if removed else {}
        return ProcessInfo.from_record(process_id, 0, rec), claims

    # -- claims ----------------------------------------------------------------------------------
    def take_attempts(self, me: str, attempts: list[tuple[str, str]], now: int, alive_since: int,
                      lost_limit: int) -> list[tuple[TakeCode, str]]:
        """Claim activity attempts ``(instance id, task key)``: per attempt (code, busy holder or '')."""
        if not attempts:
            return []
        by_shard: dict[int, list[int]] = {}
        for n, (instance_id, _) in enumerate(attempts):
            by_shard.setdefault(self.keys.shard_of(instance_id).number, []).append(n)
        out: list[tuple[TakeCode, str]] = [(TakeCode.NOT_AWAITED, "")] * len(attempts)
        for number, positions in by_shard.items():  # one script per shard (one in all, for one instance)
            mine = [attempts[n] for n in positions]
            tasks = [self.keys.instance(i).tasks for i, _ in mine]
            codes, holders = self.scripts.take_attempts(self.keys.shards()[number], tasks, me, now, alive_since,
                                                        lost_limit, mine)
            for n, code, holder in zip(positions, codes, holders):
                out[n] = (code, holder)
        return out

    def take_step(self, me: str, instance_id: str, alive_since: int, force: bool = False) -> tuple[int, str]:
        """Claim the instance's step: (times in a row its process died holding it, the live process
        holding it, which keeps it unless ``force``, or '')."""
        return self.scripts.take_step(self.keys.shard_of(instance_id), me, alive_since, instance_id, force)

    def release(self, claims: list[str]) -> None:
        """Drop claims this process took but hands back unrun (a batch sending the rest back to the queue)."""
        if claims:
            pipe = self.redis.pipeline(transaction=False)
            for claim in claims:
                pipe.hdel(self.keys.shard_of(split_member(claim)[0]).claims, claim)
            pipe.execute()

    # -- attempt deadlines and heartbeat details (worker/heartbeats.py) ---------------------------
    def arm(self, deadlines: list[tuple[str, str, int]]) -> None:
        """Deadlines ``(kind, claim, at ms)``: kind ``hb`` (heartbeat) or ``stc`` (start-to-close)."""
        if deadlines:
            pipe = self.redis.pipeline(transaction=False)
            for kind, claim, at in deadlines:
                pipe.zadd(self.keys.shard_of(split_member(claim)[0]).deadlines, {f"{kind}|{claim}": at})
            pipe.execute()

    def disarm(self, claims: list[str]) -> None:
        if claims:
            pipe = self.redis.pipeline(transaction=False)
            for claim in claims:
                key = self.keys.shard_of(split_member(claim)[0]).deadlines
                pipe.zrem(key, f"hb|{claim}", f"stc|{claim}")
            pipe.execute()

    def heartbeat(self, claim: str, deadline: int | None, instance_id: str, field: str,
                  packed: bytes | None) -> None:
        """An attempt's heartbeat: its heartbeat deadline moves to ``deadline`` (if armed), and
        ``packed`` details are kept for the call's next attempt (a week after the last write)."""
        pipe = self.redis.pipeline(transaction=False)
        if deadline is not None:
            pipe.zadd(self.keys.shard_of(instance_id).deadlines, {f"hb|{claim}": deadline}, xx=True)
        if packed is not None:
            key = self.keys.heartbeat_details(instance_id)
            pipe.hset(key, field, packed)
            pipe.pexpire(key, 7 * 24 * 3600 * 1000)
        pipe.execute()

    def heartbeat_details(self, instance_id: str, field: str) -> bytes | None:
        value = self.redis.hget(self.keys.heartbeat_details(instance_id), field)
        return value if isinstance(value, bytes) or value is None else str(value).encode()

    def due_deadlines(self, now: int, limit: int = 500) -> list[tuple[str, str]]:
        """Deadlines that ran out: ``(kind, claim)``, taken once whoever polls."""
        shards = self.polled()  # this pool's share of the shards (worker/shardplan.py)
        if isinstance(self.redis, redis.RedisCluster):  # its pipeline refuses scripts: one call each
            entries = [e for shard in shards for e in self.scripts.pop_due(shard.deadlines, now, limit)]
        else:
            pipe = self.redis.pipeline(transaction=False)
            for shard in shards:
                self.scripts.pop_due(shard.deadlines, now, limit, client=pipe)
            entries = [_text(e) for reply in pipe.execute() for e in reply]
        out = []
        for entry in entries:
            kind, _, claim = entry.partition("|")
            out.append((kind, claim))
        return out

    def holders(self, claims: list[str]) -> list[str | None]:
        """The process holding each of ``claims``, None where nobody does."""
        if not claims:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for claim in claims:
            pipe.hget(self.keys.shard_of(split_member(claim)[0]).claims, claim)
        return [_text(v) if v is not None else None for v in pipe.execute()]

    def holder(self, claim: str) -> str | None:
        """The process holding ``<id>|<task key>`` (or ``<id>|step``), if any."""
        value = self.redis.hget(self.keys.shard_of(split_member(claim)[0]).claims, claim)
        return _text(value) if value is not None else None


def is_step_claim(claim: str) -> bool:
    return split_member(claim)[1] == STEP_CLAIM


__all__ = ["ProcessInfo", "ProcessRegistry", "is_step_claim"]
