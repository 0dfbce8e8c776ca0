"""Every read of the store's listing indexes and of instances, in one place: the client, the CLI,
the HTTP API and the dashboard all query through ``StoreQueries`` (``WorkflowClient.queries``).

The indexes are sorted sets scored by creation time: ``idx:all``, ``idx:status:<S>``,
``idx:name:<N>`` and ``idx:ns:<N>:<S>`` (name and status together), kept by the store's scripts on
every create, status change and purge. So:

* a page filtered by status, name (or both) and a creation-time range is one ``ZREVRANGEBYSCORE ...
  LIMIT`` of ONE index: O(log n + offset + limit) however many instances exist, nothing filtered;
* a page of one parent's children reads the parent's children set and scores it against the index
  the other filters select (ZMSCORE): O(children of that parent);
* counts are ZCARD / ZCOUNT of the same indexes;
* an id prefix (which no index orders) walks the selected index newest first in chunks and stops as
  soon as the page is full, giving up after ``SCAN_BUDGET`` entries with ``partial: true``;
* stats over a window look at instances *created* in the window: counts per type and status are
  exact; durations and the chart use the newest ``sample`` completed and failed runs of the window.

Paging is by offset, newest first; instances created while paging shift later pages by that many
(the usual trade-off of offset paging; filter with ``created_to`` fixed at the first page's time for a
stable walk).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..codec import unpack_event
from ..core.errors import FailureDetails
from ..core.history import ChildScheduled, HistoryEvent, TaskCompleted, TaskFailed, TaskScheduled, TimerCreated
from ..core.vocabulary import (
    EAGER_MARK,
    EVENT_TOKEN_PREFIX,
    NOT_CREATED,
    PURGED,
    SELF_FINISHED,
    STATUSES,
    TASK_TOKEN_PREFIX,
    TERMINAL,
    Status,
    member,
)
from .keys import validate_instance_id
from .records import (
    DURATION_FIELDS,
    FAILURE_FIELD,
    LIST_FIELDS,
    SUMMARY_FIELDS,
    VERSION_FIELDS,
    InstanceMeta,
    failure_of,
)
from .redis_store import RedisStore
from .shardscan import MergedIndex, make_cursor

MAX_PAGE = 1000  # the client's listing
MAX_LIMIT = 500  # the dashboard's runs list
SCAN_CHUNK = 2000
SCAN_BUDGET = 200_000
# The dashboard's order of the statuses (its counts and filters list them so).
DASHBOARD_STATUSES = (Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.TERMINATED, Status.SUSPENDED,
                      Status.PENDING)
FINISHED = tuple(s for s in DASHBOARD_STATUSES if s in TERMINAL)
_PREFIX = re.compile(r"^[A-Za-z0-9_.:@\-]{1,200}$")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _opt_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, b"", "") else None


def dashboard_status(status: str | None) -> str | None:
    """A status filter as the dashboard sends it (any case); None for none."""
    if not status:
        return None
    upper = status.upper()
    if upper not in DASHBOARD_STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(DASHBOARD_STATUSES)}")
    return upper


def error_matches(failure: FailureDetails | None, error_type: str) -> bool:
    """Does ``failure`` have ``error_type``? A short name matches a qualified one (``ValueError``
    matches ``pkg.errors.ValueError``)."""
    if failure is None:
        return False
    return failure.error_type == error_type or failure.error_type.endswith("." + error_type)


@dataclass
class Selection:
    """Ids a filtered walk found, newest first; ``exhausted``: the walk saw every candidate."""

    ids: list[str]
    exhausted: bool
    scanned: int


@dataclass
class Counts:
    """Instance counts: overall, by status, and by workflow name (each with its own by-status split)."""

    total: int
    by_status: dict[str, int]
    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_status": self.by_status, "by_name": self.by_name}


def _type_stats(name: str, counts: dict[Any, int], ordered: list[int]) -> dict[str, Any]:
    """One workflow type's row of the stats: counts, success rate and duration percentiles."""
    finished = sum(counts[s] for s in FINISHED)
    return {
        "name": name, "counts": counts, "total": sum(counts.values()), "finished": finished,
        "success_rate": counts[Status.COMPLETED] / finished if finished else None,
        "p50_ms": percentile(ordered, 50), "p95_ms": percentile(ordered, 95), "measured": len(ordered),
    }


def _count_error(errors: dict[tuple[str, str], dict[str, Any]], name: str, failure: FailureDetails,
                 done: int) -> None:
    entry = errors.setdefault((name, failure.error_type), {
        "name": name, "error_type": failure.error_type, "message": failure.message[:500], "count": 0, "latest": done})
    entry["count"] += 1
    if done > entry["latest"]:
        entry["latest"], entry["message"] = done, failure.message[:500]


def percentile(sorted_values: list[int], q: float) -> int | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class StoreQueries:
    """Read-only queries over one store: listing, counting, stats, and what one instance holds."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.keys = store.keys
        self.redis = store.redis

    # -- listing (the client's) -------------------------------------------------------------------
    def page_ids(self, *, status: str | None = None, name: str | None = None,
                 parent: str | None = None, created_from: int | None = None, created_to: int | None = None,
                 offset: int = 0, limit: int = 50) -> tuple[list[str], int]:
        """(ids of one page, newest first; total matching). Times are ms since the epoch, inclusive."""
        status_name = status or None
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
        if parent is not None:
            return self._children_page(validate_instance_id(parent), status_name, name, low, high, offset, limit)
        entries, total = self._merged(status_name, name, low, high).page(offset, limit, with_count=True)
        return [e[1] for e in entries], total

    def page_after(self, cursor: str, *, status: str | None = None, name: str | None = None,
                   created_from: int | None = None, created_to: int | None = None,
                   limit: int = 50) -> tuple[list[str], str | None]:
        """(ids of the page after ``cursor``, the next page's cursor or None at the end): a walk as deep
        as wanted at the cost of one page per shard. Pass ``""`` for the first page."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
        low = "-inf" if created_from is None else int(created_from)
        high = "+inf" if created_to is None else int(created_to)
        index = self._merged(status or None, name or None, low, high)
        entries = index.after(cursor, limit + 1) if cursor else index.page(0, limit + 1)[0]
        more = len(entries) > limit
        return [e[1] for e in entries[:limit]], make_cursor(entries[limit - 1]) if more else None

    def _merged(self, status: str | None, name: str | None, low: Any = "-inf", high: Any = "+inf") -> MergedIndex:
        """The listing index that holds exactly ``status`` and ``name`` (either None), over every shard."""
        return MergedIndex(self.redis, [shard.index(status, name) for shard in self.keys.shards()], low, high)

    def _children_page(self, parent: str, status: str | None, name: str | None, low: Any, high: Any, offset: int,
                       limit: int) -> tuple[list[str], int]:
        kids = [_text(k) for k in self.redis.smembers(self.keys.instance(parent).children)]
        if not kids:
            return [], 0
        lo = float(low)
        hi = float(high)
        pipe = self.redis.pipeline(transaction=False)
        for kid in kids:
            pipe.zscore(self.keys.shard_of(kid).index(status, name), kid)
        scored = [(score, kid) for kid, score in zip(kids, pipe.execute())
                  if score is not None and lo <= score <= hi]
        scored.sort(reverse=True)
        return [kid for _, kid in scored[offset:offset + limit]], len(scored)

    def metas(self, ids: Iterable[str], *, fetch_payloads: bool = False) -> list[InstanceMeta]:
        """Metadata of ``ids`` in one pipelined read (instances purged meanwhile are left out);
        without ``fetch_payloads`` the payloads (input, output, custom status) stay in Redis."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for instance_id in ids:
            meta_key = self.keys.instance(instance_id).meta
            if fetch_payloads:
                pipe.hgetall(meta_key)
            else:
                pipe.hmget(meta_key, LIST_FIELDS)
        out = []
        for instance_id, raw in zip(ids, pipe.execute()):
            meta = (InstanceMeta.from_hash(instance_id, raw) if raw else None) if fetch_payloads else \
                InstanceMeta.from_fields(instance_id, LIST_FIELDS, raw)
            if meta is not None:
                out.append(meta)
        return out

    # -- counting -------------------------------------------------------------------------------
    def counts(self, *, created_from: int | None = None, created_to: int | None = None) -> Counts:
        """Counts overall, by status and by workflow name x status, optionally within a creation range."""
        low = "-inf" if created_from is None else int(created_from)
        high = "+inf" if created_to is None else int(created_to)
        names = self._indexed_names()
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            pipe.zcount(shard.index_all, low, high)
            for s in STATUSES:
                pipe.zcount(shard.status_index(s), low, high)
            for n in names:
                pipe.zcount(shard.name_index(n), low, high)
                for s in STATUSES:
                    pipe.zcount(shard.name_status_index(n, s), low, high)
        width = (1 + len(STATUSES)) * (1 + len(names))
        raw = [int(v) for v in pipe.execute()]
        summed = [sum(raw[k::width]) for k in range(width)]  # each count, over the shards
        values = iter(summed)
        total = next(values)
        by_status: dict[str, int] = {s: next(values) for s in STATUSES}
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
        outstanding = {_text(k) for k in self.redis.hkeys(self.keys.instance(instance_id).tasks)}
        calls: list[dict[str, Any]] = []
        for event in snap.history:
            if not isinstance(event, (TaskScheduled, ChildScheduled, TimerCreated)):
                continue
            if snap.meta.task_key(event.seq) not in outstanding:
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

    def call_progress(self, instance_id: str) -> dict[int, dict[str, Any]]:
        """The live state of every activity and child the instance awaits, by sequence number:
        ``delivered`` results waiting in its inbox (``completed`` / ``failed``, with ``ts`` and
        ``error``), attempts ``running`` (started since they were dispatched, with ``started``) and
        ``queued`` ones; children by their own status. Empty for a finished instance."""
        snap = self.store.load(instance_id)
        if snap is None or snap.meta.is_terminal:
            return {}
        outstanding = {_text(k): v for k, v in self.redis.hgetall(self.keys.instance(instance_id).tasks).items()}
        out: dict[int, dict[str, Any]] = {}
        for entry in snap.inbox:
            event = entry.event
            if isinstance(event, TaskCompleted):
                out[event.seq] = {"state": "completed", "ts": event.ts}
            elif isinstance(event, TaskFailed):
                out[event.seq] = {"state": "failed", "ts": event.ts,
                                  "error": f"{event.failure.error_type}: {event.failure.message}"}
        open_calls = [e for e in snap.history if isinstance(e, (TaskScheduled, ChildScheduled))
                      and e.seq not in out and snap.meta.task_key(e.seq) in outstanding]
        activities = [e for e in open_calls if isinstance(e, TaskScheduled)]
        if activities:
            members = [member(instance_id, snap.meta.task_key(e.seq)) for e in activities]
            scores = self.redis.zmscore(self.keys.shard_of(instance_id).activities, members)
            for event, score in zip(activities, scores):
                # Dispatch scores an attempt with its step's time (its TaskScheduled ts); starting it, later.
                eager = _opt_text(outstanding.get(snap.meta.task_key(event.seq))) == EAGER_MARK
                if eager or (score is not None and int(score) > event.ts):
                    out[event.seq] = {"state": "running", "started": int(score) if score is not None else None}
                else:
                    out[event.seq] = {"state": "queued"}
        for event in open_calls:
            if isinstance(event, ChildScheduled):
                child = self.store.get_meta(event.instance_id)
                status = child.status if child is not None else Status.PENDING
                out[event.seq] = {"state": "queued" if status == Status.PENDING else "running",
                                  "child_status": status}
        return out

    def select(self, *, status: str | None = None, name: str | None = None, error_type: str | None = None,
               id_prefix: str | None = None, created_from: int | None = None, created_to: int | None = None,
               limit: int = 1000, budget: int = SCAN_BUDGET) -> Selection:
        """Up to ``limit`` ids matching every filter, newest first. Status, name and the creation
        range pick one index (as ``page_ids``); an id prefix and an error type, which no index orders,
        are checked while walking it in chunks, for at most ``budget`` entries."""
        if id_prefix and not _PREFIX.match(id_prefix):
            raise ValueError(f"invalid id prefix {id_prefix!r}: instance ids use letters, digits and _ . : @ -")
        if error_type is not None and (not isinstance(error_type, str) or not error_type.strip()):
            raise ValueError(f"error type filter must be a non-empty string, got {error_type!r}")
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        low = "-inf" if created_from is None else int(created_from)
        high = "+inf" if created_to is None else int(created_to)
        walk = self._merged(status or None, name, low, high).scan(SCAN_CHUNK // 4)
        found: list[str] = []
        scanned = 0
        exhausted = False
        while len(found) < limit and scanned < budget:
            chunk = [e[1] for e in itertools.islice(walk, SCAN_CHUNK)]
            scanned += len(chunk)
            exhausted = len(chunk) < SCAN_CHUNK
            if id_prefix:
                chunk = [i for i in chunk if i.startswith(id_prefix)]
            if error_type and chunk:
                pipe = self.redis.pipeline(transaction=False)
                for instance_id in chunk:
                    pipe.hget(self.keys.instance(instance_id).meta, FAILURE_FIELD)
                chunk = [i for i, raw in zip(chunk, pipe.execute()) if error_matches(failure_of(raw), error_type)]
            found.extend(chunk)
            if exhausted:
                break
        return Selection(found[:limit], exhausted and len(found) <= limit, scanned)

    # -- the dashboard's -----------------------------------------------------------------------------------
    def status_totals(self) -> dict[str, int]:
        """Instances in each status (the dashboard's order), and ``TOTAL``."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            for status in DASHBOARD_STATUSES:
                pipe.zcard(shard.status_index(status))
            pipe.zcard(shard.index_all)
        raw = [int(n) for n in pipe.execute()]
        width = len(DASHBOARD_STATUSES) + 1
        *per_status, total = (sum(raw[k::width]) for k in range(width))
        return {**dict(zip(DASHBOARD_STATUSES, per_status)), "TOTAL": total}

    def workflow_names(self) -> list[str]:
        """Names served by worker pools, plus names that have instances (when the store indexes them)."""
        names = {_text(k) for k in self.redis.hkeys(self.keys.workflows)}
        return sorted(names | set(self._indexed_names()))

    def _indexed_names(self) -> list[str]:
        """Workflow names that have instances, over every shard."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.keys.shards():
            pipe.smembers(shard.index_names)
        return sorted({_text(n) for reply in pipe.execute() for n in reply})

    # -- listing ----------------------------------------------------------------------------------
    def summaries(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Metadata without payloads, one pipeline round trip; ids purged meanwhile are skipped."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for instance_id in ids:
            pipe.hmget(self.keys.instance(instance_id).meta, SUMMARY_FIELDS)
        out = []
        for instance_id, row in zip(ids, pipe.execute()):
            if row[2] is None:
                continue
            name, app, status, created, updated, completed, parent, failure = row
            error = failure_of(failure)
            out.append({
                "instance_id": instance_id, "name": _opt_text(name), "app_id": _opt_text(app),
                "status": _opt_text(status),
                "created": _int(created), "updated": _int(updated), "completed": _int(completed),
                "parent": _opt_text(parent),
                "error": None if error is None else {"error_type": error.error_type, "message": error.message[:500]},
            })
        return out

    def list_runs(self, *, status: str | None = None, name: str | None = None, since: int | None = None,
                  until: int | None = None, prefix: str | None = None, error_type: str | None = None,
                  offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """One page of instances, newest first (by creation time), with the filters combined.

        ``total`` is exact when the filters map onto one index (or the walk covered every
        candidate) and None otherwise; ``has_more`` is always exact unless ``partial``."""
        status = dashboard_status(status)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if prefix and not _PREFIX.match(prefix):
            raise ValueError(f"invalid id prefix {prefix!r}: instance ids use letters, digits and _ . : @ -")
        if since is not None and until is not None and since > until:
            raise ValueError("the time range is empty: 'since' is after 'until'")
        if error_type:
            # No index orders failures by type: walk the narrowest index, checking each (``select``).
            found = self.select(status=status, name=name, error_type=error_type, id_prefix=prefix,
                                created_from=since, created_to=until, limit=offset + limit + 1)
            page = found.ids[offset:offset + limit]
            return {"items": self.summaries(page), "total": len(found.ids) if found.exhausted else None,
                    "has_more": len(found.ids) > offset + limit, "offset": offset, "limit": limit,
                    "partial": not found.exhausted and len(found.ids) <= offset + limit, "scanned": found.scanned}
        lo = since if since is not None else "-inf"
        hi = until if until is not None else "+inf"
        candidates: list[tuple[str | None, str | None]]
        if status and name:
            candidates = [(status, name)]  # one index holds both filters
        else:
            candidates = [(status, None)] if status else []
            if name:
                candidates.append((None, name))
        if not candidates:
            candidates = [(None, None)]
        primary = self._merged(*candidates[0], lo, hi)
        secondary = self._merged(*candidates[1], lo, hi) if len(candidates) > 1 else None
        if secondary is not None and secondary.count() < primary.count():
            primary, secondary = secondary, primary
        if secondary is None and not prefix:
            entries, total = primary.page(offset, limit + 1, with_count=True)
            page = [e[1] for e in entries]
            return {"items": self.summaries(page[:limit]), "total": total, "has_more": len(page) > limit,
                    "offset": offset, "limit": limit, "partial": False, "scanned": len(page)}
        return self._walk(primary, secondary, prefix, offset, limit)

    def _walk(self, primary: MergedIndex, secondary: MergedIndex | None, prefix: str | None,
              offset: int, limit: int) -> dict[str, Any]:
        wanted = offset + limit + 1
        matched: list[str] = []
        scanned, exhausted = 0, False
        needle = prefix or None
        walk = primary.scan(SCAN_CHUNK // 4)
        while len(matched) < wanted and scanned < SCAN_BUDGET:
            chunk = list(itertools.islice(walk, SCAN_CHUNK))
            scanned += len(chunk)
            exhausted = len(chunk) < SCAN_CHUNK
            if needle is not None:
                chunk = [e for e in chunk if e[1].startswith(needle)]
            if secondary is not None and chunk:
                pipe = self.redis.pipeline(transaction=False)
                for _, instance_id, n in chunk:
                    pipe.zscore(secondary.keys[n], instance_id)
                chunk = [e for e, score in zip(chunk, pipe.execute()) if score is not None]
            matched.extend(e[1] for e in chunk)
            if exhausted:
                break
        partial = not exhausted and len(matched) < wanted
        page = matched[offset:offset + limit]
        return {"items": self.summaries(page), "total": len(matched) if exhausted else None,
                "has_more": len(matched) > offset + limit, "offset": offset, "limit": limit,
                "partial": partial, "scanned": scanned}

    # -- stats ------------------------------------------------------------------------------------
    def stats(self, *, now: int, window_ms: int, buckets: int = 24, sample: int = 5_000) -> dict[str, Any]:
        """Per workflow type over the instances created in ``[now - window_ms, now]``: counts by
        status, success rate (completed / finished) and p50/p95 duration of the runs that ended on
        their own (completed or failed); plus completions and failures per time bucket.

        Counts are exact (the store's name x status index, via ``InstanceQuery.counts``); durations
        and the chart read the newest ``sample`` completed and failed runs of the window."""
        if window_ms <= 0:
            raise ValueError("the window must be positive")
        if not 1 <= buckets <= 200:
            raise ValueError(f"buckets must be between 1 and 200, got {buckets}")
        start = now - window_ms
        by_name = self.counts(created_from=start, created_to=now).by_name
        counted = {name: {s: entry["by_status"].get(s, 0) for s in DASHBOARD_STATUSES}
                   for name, entry in by_name.items()}
        rows, sampled = self._newest_finished(start, now, sample)
        width = max(1, -(-window_ms // buckets))
        series = [{"t": start + k * width, "completed": 0, "failed": 0} for k in range(buckets)]
        errors: dict[tuple[str, str], dict[str, Any]] = {}  # (workflow, error type) -> count, latest message
        durations = self._durations(rows, start, width, series, errors)
        types = [_type_stats(name, counts, sorted(durations.get(name, [])))
                 for name, counts in sorted(counted.items()) if sum(counts.values())]
        top_errors = sorted(errors.values(), key=lambda e: (-e["count"], -(e["latest"] or 0)))[:20]
        return {"window_ms": window_ms, "start": start, "now": now, "bucket_ms": width, "types": types,
                "series": series, "sampled": sampled, "sample": sample, "top_errors": top_errors}

    def _newest_finished(self, start: int, now: int, sample: int) -> tuple[list[tuple[str, str, int]], bool]:
        """(status, id, created) of the newest ``sample`` completed and of the newest failed runs
        created in the window, and whether there were more."""
        rows: list[tuple[str, str, int]] = []
        sampled = False
        for status in SELF_FINISHED:
            entries, count = self._merged(status, None, start, now).page(0, sample, with_count=True)
            sampled = sampled or count > len(entries)
            rows.extend((status, instance_id, int(created)) for created, instance_id, _ in entries)
        return rows, sampled

    def _durations(self, rows: list[tuple[str, str, int]], start: int, width: int,
                   series: list[dict[str, int]], errors: dict[tuple[str, str], dict[str, Any]]) -> dict[str, list[int]]:
        """Run durations by workflow name; each run's end is also counted in its ``series`` bucket,
        and each failed run's error in ``errors`` (the top errors)."""
        durations: dict[str, list[int]] = {}
        for batch_start in range(0, len(rows), 2000):
            batch = rows[batch_start:batch_start + 2000]
            pipe = self.redis.pipeline(transaction=False)
            for _, instance_id, _ in batch:
                pipe.hmget(self.keys.instance(instance_id).meta, DURATION_FIELDS)
            for (status, _, created), (raw_name, completed, raw_failure) in zip(batch, pipe.execute()):
                done = _int(completed)
                if raw_name is None or done is None:
                    continue  # purged meanwhile
                name = raw_name.decode(errors="replace")
                durations.setdefault(name, []).append(max(0, done - created))
                failure = failure_of(raw_failure) if status == Status.FAILED else None
                if failure is not None:
                    _count_error(errors, name, failure, done)
                k = (done - start) // width
                if 0 <= k < len(series):
                    series[k][status.lower()] += 1
        return durations

    # -- one instance -----------------------------------------------------------------------------
    def meta(self, instance_id: str) -> InstanceMeta | None:
        return self.store.get_meta(instance_id)

    def children(self, instance_id: str, limit: int = 500) -> tuple[list[dict[str, Any]], int]:
        """Summaries of the child instances (up to ``limit``) and how many there are."""
        key = self.keys.instance(instance_id).children
        total = int(self.redis.scard(key))
        members: set[bytes] = set()
        for child in self.redis.sscan_iter(key, count=limit):
            members.add(child)
            if len(members) >= limit:
                break
        ids = sorted(_text(m) for m in members)
        found = self.summaries(ids)
        known = {s["instance_id"] for s in found}
        found += [{"instance_id": i, "name": None, "status": PURGED} for i in ids if i not in known]
        return found, total

    def version(self, instance_id: str) -> tuple[int, str] | None:
        """(history version, status): what a live page polls to know whether anything changed."""
        ver, status, updated = self.redis.hmget(self.keys.instance(instance_id).meta, VERSION_FIELDS)
        if status is None:
            return None
        return int(ver or 0), f"{_text(status)}:{_text(updated or b'0')}"

    def inbox(self, instance_id: str, limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Events delivered but not yet consumed by a step (what the run is about to process)."""
        key = self.keys.instance(instance_id).inbox
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(key)
        pipe.xrange(key, count=limit)
        total, rows = pipe.execute()
        out = []
        for entry_id, fields in rows:
            event: HistoryEvent = unpack_event(fields[b"e"])
            out.append({"id": _text(entry_id), "kind": event.kind, "ts": event.ts,
                        "name": getattr(event, "name", None), "seq": getattr(event, "seq", None)})
        return out, int(total)

    def waiting_for(self, instance_id: str, limit: int = 200) -> dict[str, Any]:
        """What the blocked workflow waits on: event names (tokens ``e:<name>``) and how many calls
        (``t:<seq>``), plus the mode (``all`` / ``any``) the engine recorded with its last step."""
        k = self.keys.instance(instance_id)
        mode, single = self.redis.hmget(k.meta, ["wmode", "wtok"])
        tokens: list[str] = []
        if single is not None:  # a wait of one token (commit.lua): '' once it arrived
            tokens = [_text(single)] if single else []
        for token in self.redis.sscan_iter(k.wait, count=limit) if single is None else ():
            tokens.append(token.decode(errors="replace"))
            if len(tokens) >= limit:
                break
        events = sorted(t[len(EVENT_TOKEN_PREFIX):] for t in tokens if t.startswith(EVENT_TOKEN_PREFIX))
        return {"mode": _text(mode) if mode else None, "events": events,
                "calls": sum(1 for t in tokens if t.startswith(TASK_TOKEN_PREFIX))}

    def history(self, instance_id: str) -> list[HistoryEvent]:
        return self.store.get_history(instance_id)


__all__ = ["Counts", "DASHBOARD_STATUSES", "MAX_LIMIT", "MAX_PAGE", "SCAN_BUDGET", "StoreQueries", "dashboard_status",
           "percentile"]
