"""What must hold after a chaos run, read straight from Redis (never from the engine's own reports).

* every workflow the driver started is COMPLETED with the output the oracle computes;
* every instance's history stream has exactly one entry per committed version (ids ``1-1``, ``2-1``,
  ... up to the ``ver`` in its metadata, strictly increasing, none missing): no step committed twice;
* within a history, every call (activity attempt, timer, child) is scheduled once and its outcome
  recorded once, the instance started and finished once, and an event raised twice with one
  idempotency key is recorded once;
* nothing is left behind: the global outbox and every instance's outbox empty, nothing ready, no
  timer pending, no instance PENDING, RUNNING or SUSPENDED.

Activity re-executions (at-least-once) are not failures: they are counted from ``chaos:exec`` and
reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from orchestrator.codec import unpack_events
from orchestrator.core.history import (
    ChildCompleted,
    ChildFailed,
    ChildScheduled,
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from orchestrator.store.keys import KeySchema
from orchestrator.store.redis_store import InstanceMeta, RedisStore

from .app import EXEC_KEY

SCHEDULED = (TaskScheduled, TimerCreated, ChildScheduled)
OUTCOMES = (TaskCompleted, TaskFailed, TimerFired, ChildCompleted, ChildFailed)


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    instances: int = 0
    completed: int = 0
    lost: int = 0  # started workflows not COMPLETED with the oracle's output
    double_commits: int = 0  # instances with a version committed twice, or a call scheduled/resolved twice
    steps: int = 0
    history_entries: int = 0
    activity_attempts: int = 0
    executions: int = 0
    duplicate_executions: int = 0
    duplicated_attempts: int = 0

    def problem(self, text: str) -> None:
        self.problems.append(text)


def verify(r: redis.Redis, expected: dict[str, Any], event_instances: set[str], prefix: str = "orch") -> Verdict:
    """``expected``: top-level instance id -> oracle output; ``event_instances``: ids that were sent
    the same ``go`` event twice under one idempotency key."""
    keys, v = RedisStore(r, prefix).keys, Verdict()
    all_ids = [raw.decode() for shard in keys.shards() for raw in r.zrange(shard.index_all, 0, -1)]
    v.instances = len(all_ids)
    for instance_id, output in expected.items():
        meta = _meta(r, keys, instance_id)
        if meta is None:
            v.problem(f"{instance_id}: lost (no metadata)")
        elif meta.status != "COMPLETED":
            v.problem(f"{instance_id}: {meta.status}, failure {meta.failure}")
        elif meta.output != output:
            v.problem(f"{instance_id}: output {meta.output!r}, the oracle says {output!r}")
        else:
            v.completed += 1
            continue
        v.lost += 1
    for instance_id in all_ids:
        _check_history(r, keys, instance_id, instance_id in event_instances, v)
    scheduled_attempts = v.activity_attempts
    runs = {k.decode(): int(n) for k, n in r.hgetall(EXEC_KEY).items()}
    v.executions = sum(runs.values())
    v.duplicate_executions = sum(n - 1 for n in runs.values() if n > 1)
    v.duplicated_attempts = sum(1 for n in runs.values() if n > 1)
    if len(runs) != scheduled_attempts:
        v.problem(f"{scheduled_attempts} activity attempts were scheduled but {len(runs)} distinct ones ran")
    _check_leftovers(r, keys, v)
    return v


def _meta(r: redis.Redis, keys: KeySchema, instance_id: str) -> InstanceMeta | None:
    raw = r.hgetall(keys.instance(instance_id).meta)
    return InstanceMeta.from_hash(instance_id, raw) if raw else None


def _check_history(r: redis.Redis, keys: KeySchema, instance_id: str, deduped_event: bool, v: Verdict) -> None:
    meta = _meta(r, keys, instance_id)
    if meta is None:
        v.problem(f"{instance_id}: indexed but has no metadata")
        return
    entries = r.xrange(keys.instance(instance_id).hist)
    ids = [eid.decode() for eid, _ in entries]
    v.history_entries += len(ids)
    doubled = False
    if ids != [f"{n}-1" for n in range(1, meta.version + 1)]:
        v.problem(f"{instance_id}: history ids {ids[:8]}... are not exactly 1-1..{meta.version}-1")
        doubled = True
    events = []
    for eid, fields in entries:
        batch = unpack_events(fields[b"e"])
        if not batch or not isinstance(batch[0], StepStarted):
            v.problem(f"{instance_id}: history entry {eid.decode()} does not open with StepStarted")
        events.extend(batch)
    v.steps += sum(isinstance(e, StepStarted) for e in events)
    started = sum(isinstance(e, ExecutionStarted) for e in events)
    finished = [e for e in events if isinstance(e, ExecutionCompleted)]
    if started != 1 or len(finished) != 1 or events[-1] is not finished[-1]:
        v.problem(f"{instance_id}: {started} ExecutionStarted, {len(finished)} ExecutionCompleted (not last)")
    scheduled = Counter(e.seq for e in events if isinstance(e, SCHEDULED))
    outcomes = Counter(e.seq for e in events if isinstance(e, OUTCOMES))
    v.activity_attempts += sum(isinstance(e, TaskScheduled) for e in events)
    twice = sorted(seq for seq, n in scheduled.items() if n > 1)
    if twice:
        v.problem(f"{instance_id}: calls {twice} scheduled more than once")
        doubled = True
    if outcomes != Counter(scheduled.keys()):
        bad = sorted(s for s in set(scheduled) | set(outcomes) if outcomes.get(s, 0) != 1)
        v.problem(f"{instance_id}: calls {bad} do not have exactly one recorded outcome")
        doubled = doubled or any(outcomes.get(s, 0) > 1 for s in bad)
    v.double_commits += doubled
    if deduped_event:
        raised = sum(isinstance(e, EventRaised) for e in events)
        if raised != 1:
            v.problem(f"{instance_id}: the event raised twice with one idempotency key is in history {raised} times")


def _check_leftovers(r: redis.Redis, keys: KeySchema, v: Verdict) -> None:
    for shard in keys.shards():
        for name, key in (("outbox", shard.outbox), ("ready", shard.ready), ("timers", shard.timers)):
            left = r.zrange(key, 0, 20)
            if left:
                v.problem(f"{name} of shard {shard.number} is not empty: {[m.decode() for m in left]}")
        for status in ("PENDING", "RUNNING", "SUSPENDED"):
            stuck = r.zrange(shard.status_index(status), 0, 20)
            if stuck:
                v.problem(f"instances stuck {status}: {[s.decode() for s in stuck]}")
    outboxes = [k.decode() for k in r.scan_iter(match=f"{keys.prefix}:{{*}}:i:*:outbox", count=1000)]
    if outboxes:
        v.problem(f"instance outboxes left unpublished: {outboxes[:10]}")


def leftovers_drained(r: redis.Redis, prefix: str = "orch") -> bool:
    """Nothing ready, nothing in the outbox, no timer pending (what the end state waits for)."""
    return not any(r.zcard(shard.ready) or r.zcard(shard.outbox) or r.zcard(shard.timers)
                   for shard in RedisStore(r, prefix).keys.shards())
