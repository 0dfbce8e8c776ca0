"""Listing and counting instances, and what an instance is waiting for: the reads a dashboard makes.

Every listing is a range read of ONE sorted set scored by creation time, newest first:
``idx:all``, ``idx:status:<S>``, ``idx:name:<N>`` or, for status and name together, ``idx:ns:<N>:<S>``
(kept by the store's scripts on every status change). A creation-time range is the score range of
that read, so a page costs O(log n + offset + limit) however many instances exist; nothing walks an
index and filters. Filtering by parent reads the parent's children set and scores it against the
index the other filters select (ZMSCORE), so it costs O(children of that parent).

Paging is by offset, newest first; instances created while paging shift later pages by that many
(the usual trade-off of offset paging; filter with ``created_to`` fixed at the first page's time for a
stable walk). Counts are ZCARD/ZCOUNT reads of the same indexes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .core.history import ChildScheduled, TaskScheduled, TimerCreated
from .core.vocabulary import NOT_CREATED
from .state import WorkflowState, WorkflowStatus
from .store.keys import validate_instance_id
from .store.redis_store import InstanceMeta, RedisStore

STATUSES = tuple(s.name for s in WorkflowStatus if s is not WorkflowStatus.UNKNOWN)
MAX_PAGE = 1000
# Metadata fields a listing needs; payloads (input, output, custom status) are left in Redis.
_LIST_FIELDS = ("name", "app", "status", "ver", "gen", "created", "updated", "completed", "failure",
                "parent", "parent_key", "parent_app")


@dataclass
class InstancePage:
    """One page of a listing: the instances, how many match in total, and where the next page starts."""

    items: list[WorkflowState]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [s.to_dict() for s in self.items], "total": self.total, "offset": self.offset,
                "limit": self.limit, "next_offset": self.next_offset}


@dataclass
class Counts:
    """Instance counts: overall, by status, and by workflow name (each with its own by-status split)."""

    total: int
    by_status: dict[str, int]
    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_status": self.by_status, "by_name": self.by_name}


def parse_status(status: str | WorkflowStatus | None) -> str | None:
    if status is None or status == "":
        return None
    if isinstance(status, WorkflowStatus):
        name = status.name
    elif isinstance(status, str):
        name = WorkflowStatus.parse(status).name
    else:
        raise TypeError(f"status must be a WorkflowStatus or its name, got {type(status).__name__}")
    if name not in STATUSES:
        raise ValueError(f"cannot filter by status {name}; expected one of {', '.join(STATUSES)}")
    return name


class InstanceQuery:
    """Read-only queries over a store's listing indexes."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.keys = store.keys
        self.redis = store.redis

    # -- listing --------------------------------------------------------------------------------
    def page_ids(self, *, status: str | WorkflowStatus | None = None, name: str | None = None,
                 parent: str | None = None, created_from: int | None = None, created_to: int | None = None,
                 offset: int = 0, limit: int = 50) -> tuple[list[str], int]:
        """(ids of one page, newest first; total matching). Times are ms since the epoch, inclusive."""
        status_name = parse_status(status)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"workflow name filter must be a non-empty string, got {name!r}")
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
        low = "-inf" if created_from is None else int(created_from)
        high = "+inf" if created_to is None else int(created_to)
        if created_from is not None and created_to is not None and created_from > created_to:
            raise ValueError("created_from is after created_to")
        key = self._index(status_name, name)
        if parent is not None:
            return self._children_page(validate_instance_id(parent), key, low, high, offset, limit)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrevrangebyscore(key, high, low, start=offset, num=limit)
        pipe.zcount(key, low, high)
        ids, total = pipe.execute()
        return [i.decode() for i in ids], int(total)

    def page(self, *, fetch_payloads: bool = False, **filters: Any) -> InstancePage:
        offset, limit = filters.get("offset", 0), filters.get("limit", 50)
        ids, total = self.page_ids(**filters)
        items = self.states(ids, fetch_payloads=fetch_payloads)
        more = offset + len(ids) < total
        return InstancePage(items, total, offset, limit, offset + len(ids) if more else None)

    def _index(self, status: str | None, name: str | None) -> str:
        if status and name:
            return self.keys.name_status_index(name, status)
        if status:
            return self.keys.status_index(status)
        if name:
            return self.keys.name_index(name)
        return self.keys.index_all

    def _children_page(self, parent: str, key: str, low: Any, high: Any, offset: int,
                       limit: int) -> tuple[list[str], int]:
        kids = [k.decode() for k in self.redis.smembers(self.keys.instance(parent).children)]
        if not kids:
            return [], 0
        lo = float(low)
        hi = float(high)
        scored = [(score, kid) for kid, score in zip(kids, self.redis.zmscore(key, kids))
                  if score is not None and lo <= score <= hi]
        scored.sort(reverse=True)
        return [kid for _, kid in scored[offset:offset + limit]], len(scored)

    def states(self, ids: Iterable[str], *, fetch_payloads: bool = False) -> list[WorkflowState]:
        """States of ``ids`` in one pipelined read (instances purged meanwhile are left out)."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for instance_id in ids:
            meta_key = self.keys.instance(instance_id).meta
            if fetch_payloads:
                pipe.hgetall(meta_key)
            else:
                pipe.hmget(meta_key, _LIST_FIELDS)
        out = []
        for instance_id, raw in zip(ids, pipe.execute()):
            if not fetch_payloads:
                raw = {f.encode(): v for f, v in zip(_LIST_FIELDS, raw) if v is not None}
            if raw:
                out.append(WorkflowState(InstanceMeta.from_hash(instance_id, raw), fetch_payloads))
        return out

    # -- counting -------------------------------------------------------------------------------
    def counts(self, *, created_from: int | None = None, created_to: int | None = None) -> Counts:
        """Counts overall, by status and by workflow name x status, optionally within a creation range."""
        low = "-inf" if created_from is None else int(created_from)
        high = "+inf" if created_to is None else int(created_to)
        names = sorted(n.decode() for n in self.redis.smembers(self.keys.index_names))
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(self.keys.index_all, low, high)
        for s in STATUSES:
            pipe.zcount(self.keys.status_index(s), low, high)
        for n in names:
            pipe.zcount(self.keys.name_index(n), low, high)
            for s in STATUSES:
                pipe.zcount(self.keys.name_status_index(n, s), low, high)
        values = iter(int(v) for v in pipe.execute())
        total = next(values)
        by_status = {s: next(values) for s in STATUSES}
        by_name: dict[str, dict[str, Any]] = {}
        for n in names:
            name_total = next(values)
            split = {s: next(values) for s in STATUSES}
            if name_total:
                by_name[n] = {"total": name_total, "by_status": split}
        return Counts(total, by_status, by_name)

    # -- what an instance waits for ---------------------------------------------------------------
    def pending_calls(self, instance_id: str) -> list[dict[str, Any]]:
        """The calls the instance's current generation made that have no result yet, oldest first:
        activities (with the app whose pool must run them), child workflows (with the child's status),
        timers. A call to an app with no running pool shows up here until a pool of that app starts."""
        snap = self.store.load(instance_id)
        if snap is None or snap.meta.is_terminal:
            return []
        outstanding = {k.decode() for k in self.redis.hkeys(self.keys.instance(instance_id).tasks)}
        gen = snap.meta.generation
        calls: list[dict[str, Any]] = []
        for event in snap.history:
            if not isinstance(event, (TaskScheduled, ChildScheduled, TimerCreated)):
                continue
            if f"{gen}.{event.seq}" not in outstanding:
                continue
            if isinstance(event, TaskScheduled):
                calls.append({"kind": "activity", "seq": event.seq, "name": event.name,
                              "app_id": event.app_id or snap.meta.app, "attempt": event.attempt,
                              "scheduled_at": event.ts})
            elif isinstance(event, ChildScheduled):
                child = self.store.get_meta(event.instance_id)
                calls.append({"kind": "child_workflow", "seq": event.seq, "name": event.name,
                              "app_id": event.app_id or snap.meta.app, "instance_id": event.instance_id,
                              "child_status": child.status if child else NOT_CREATED,
                              "scheduled_at": event.ts})
            else:
                calls.append({"kind": "retry_timer" if event.purpose == "retry" else "timer",
                              "seq": event.seq, "fire_at": event.fire_at, "scheduled_at": event.ts})
        return calls


__all__ = ["InstanceQuery", "InstancePage", "Counts", "STATUSES", "MAX_PAGE", "parse_status"]
