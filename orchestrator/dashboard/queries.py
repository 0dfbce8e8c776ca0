"""Read-only queries the dashboard needs beyond the client's: counts, filtered listing, stats.

Everything here reads the store's indexes (``keys`` documents them) and never writes. The indexes
are sorted sets scored by creation time (all instances, one per status, one per workflow name), so:

* counts by status are ``ZCARD`` (constant time, whatever the number of instances);
* a list page filtered by status, name (or both: the store's name x status index) and a time range
  is one ``ZREVRANGEBYSCORE ... LIMIT`` (logarithmic), so the first page is instant with 100,000
  instances; an id prefix (which no index orders) walks that index newest first in chunks and stops
  as soon as the page is full, giving up after ``SCAN_BUDGET`` entries with ``partial: true``;
* stats over a window look at instances *created* in the window (the indexes' order): counts per
  type and status are exact (``ZCOUNT`` of the name x status index); durations and the chart use the
  newest ``sample`` completed and failed runs of the window, and the answer says when it sampled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from ..codec import unpack_event
from ..core.history import HistoryEvent
from ..core.vocabulary import PURGED, SELF_FINISHED, TERMINAL, Status
from ..query import InstanceQuery
from ..store.redis_store import InstanceMeta, RedisStore

# The dashboard's order of the statuses (its counts and filters list them so).
STATUSES = (Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.TERMINATED, Status.SUSPENDED, Status.PENDING)
FINISHED = tuple(s for s in STATUSES if s in TERMINAL)
MEASURED = SELF_FINISHED  # the runs that ended on their own: what durations are measured on
SUMMARY_FIELDS = ("name", "app", "status", "created", "updated", "completed", "parent")
SCAN_CHUNK = 2000
SCAN_BUDGET = 200_000
MAX_LIMIT = 500
_PREFIX = re.compile(r"^[A-Za-z0-9_.:@\-]{1,200}$")


def _text(value: bytes | None) -> str | None:
    return value.decode(errors="replace") if value is not None else None


def _int(value: bytes | None) -> int | None:
    return int(value) if value not in (None, b"") else None


def parse_status(status: str | None) -> str | None:
    if not status:
        return None
    upper = status.upper()
    if upper not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    return upper


def _type_stats(name: str, counts: dict[str, int], ordered: list[int]) -> dict[str, Any]:
    """One workflow type's row of the stats: counts, success rate and duration percentiles."""
    finished = sum(counts[s] for s in FINISHED)
    return {
        "name": name, "counts": counts, "total": sum(counts.values()), "finished": finished,
        "success_rate": counts[Status.COMPLETED] / finished if finished else None,
        "p50_ms": percentile(ordered, 50), "p95_ms": percentile(ordered, 95), "measured": len(ordered),
    }


def percentile(sorted_values: list[int], q: float) -> int | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class DashboardQueries:
    """Read-only views over one store (``client.store``)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.redis = store.redis
        self.keys = store.keys

    # -- counts -----------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for status in STATUSES:
            pipe.zcard(self.keys.status_index(status))
        pipe.zcard(self.keys.index_all)
        *per_status, total = pipe.execute()
        return {**dict(zip(STATUSES, (int(n) for n in per_status))), "TOTAL": int(total)}

    def workflow_names(self) -> list[str]:
        """Names served by worker pools, plus names that have instances (when the store indexes them)."""
        names = {k.decode() for k in self.redis.hkeys(self.keys.workflows)}
        names |= {k.decode() for k in self.redis.smembers(self.keys.index_names)}
        return sorted(names)

    # -- listing ----------------------------------------------------------------------------------
    def summaries(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Metadata without payloads, one pipeline round trip; ids purged meanwhile are skipped."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for instance_id in ids:
            pipe.hmget(self.keys.instance(instance_id).meta, *SUMMARY_FIELDS)
        out = []
        for instance_id, row in zip(ids, pipe.execute()):
            if row[2] is None:
                continue
            name, app, status, created, updated, completed, parent = row
            out.append({
                "instance_id": instance_id, "name": _text(name), "app_id": _text(app), "status": _text(status),
                "created": _int(created), "updated": _int(updated), "completed": _int(completed),
                "parent": _text(parent),
            })
        return out

    def list_runs(self, *, status: str | None = None, name: str | None = None, since: int | None = None,
                  until: int | None = None, prefix: str | None = None, offset: int = 0,
                  limit: int = 50) -> dict[str, Any]:
        """One page of instances, newest first (by creation time), with the filters combined.

        ``total`` is exact when the filters map onto one index (or the walk covered every
        candidate) and None otherwise; ``has_more`` is always exact unless ``partial``."""
        status = parse_status(status)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if prefix and not _PREFIX.match(prefix):
            raise ValueError(f"invalid id prefix {prefix!r}: instance ids use letters, digits and _ . : @ -")
        if since is not None and until is not None and since > until:
            raise ValueError("the time range is empty: 'since' is after 'until'")
        lo = since if since is not None else "-inf"
        hi = until if until is not None else "+inf"
        if status and name and hasattr(self.keys, "name_status_index"):
            candidates = [self.keys.name_status_index(name, status)]  # one index holds both filters
        else:
            candidates = [self.keys.status_index(status)] if status else []
            if name:
                candidates.append(self.keys.name_index(name))
        if not candidates:
            candidates = [self.keys.index_all]
        primary, secondary = candidates[0], candidates[1] if len(candidates) > 1 else None
        if secondary is not None:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zcount(primary, lo, hi)
            pipe.zcount(secondary, lo, hi)
            a, b = pipe.execute()
            if b < a:
                primary, secondary = secondary, primary
        if secondary is None and not prefix:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrevrangebyscore(primary, hi, lo, start=offset, num=limit + 1)
            pipe.zcount(primary, lo, hi)
            ids, total = pipe.execute()
            page = [i.decode() for i in ids]
            return {"items": self.summaries(page[:limit]), "total": int(total), "has_more": len(page) > limit,
                    "offset": offset, "limit": limit, "partial": False, "scanned": len(page)}
        return self._walk(primary, secondary, lo, hi, prefix, offset, limit)

    def _walk(self, primary: str, secondary: str | None, lo: Any, hi: Any, prefix: str | None,
              offset: int, limit: int) -> dict[str, Any]:
        wanted = offset + limit + 1
        matched: list[str] = []
        pos, scanned, exhausted = 0, 0, False
        needle = prefix.encode() if prefix else None
        while len(matched) < wanted and scanned < SCAN_BUDGET:
            chunk = self.redis.zrevrangebyscore(primary, hi, lo, start=pos, num=SCAN_CHUNK)
            pos += len(chunk)
            scanned += len(chunk)
            exhausted = len(chunk) < SCAN_CHUNK
            if needle is not None:
                chunk = [i for i in chunk if i.startswith(needle)]
            if secondary is not None and chunk:
                scores = self.redis.zmscore(secondary, chunk)
                chunk = [i for i, s in zip(chunk, scores) if s is not None]
            matched.extend(i.decode() for i in chunk)
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
        by_name = InstanceQuery(self.store).counts(created_from=start, created_to=now).by_name
        counted = {name: {s: entry["by_status"].get(s, 0) for s in STATUSES} for name, entry in by_name.items()}
        rows, sampled = self._newest_finished(start, now, sample)
        width = max(1, -(-window_ms // buckets))
        series = [{"t": start + k * width, "completed": 0, "failed": 0} for k in range(buckets)]
        durations = self._durations(rows, start, width, series)
        types = [_type_stats(name, counts, sorted(durations.get(name, [])))
                 for name, counts in sorted(counted.items()) if sum(counts.values())]
        return {"window_ms": window_ms, "start": start, "now": now, "bucket_ms": width, "types": types,
                "series": series, "sampled": sampled, "sample": sample}

    def _newest_finished(self, start: int, now: int, sample: int) -> tuple[list[tuple[str, str, int]], bool]:
        """(status, id, created) of the newest ``sample`` completed and of the newest failed runs
        created in the window, and whether there were more."""
        pipe = self.redis.pipeline(transaction=False)
        for status in MEASURED:
            pipe.zrevrangebyscore(self.keys.status_index(status), now, start, start=0, num=sample, withscores=True)
            pipe.zcount(self.keys.status_index(status), start, now)
        replies = pipe.execute()
        rows: list[tuple[str, str, int]] = []
        sampled = False
        for i, status in enumerate(MEASURED):
            members, count = replies[2 * i], replies[2 * i + 1]
            sampled = sampled or count > len(members)
            rows.extend((status, m.decode(), int(score)) for m, score in members)
        return rows, sampled

    def _durations(self, rows: list[tuple[str, str, int]], start: int, width: int,
                   series: list[dict[str, int]]) -> dict[str, list[int]]:
        """Run durations by workflow name; each run's end is also counted in its ``series`` bucket."""
        durations: dict[str, list[int]] = {}
        for batch_start in range(0, len(rows), 2000):
            batch = rows[batch_start:batch_start + 2000]
            pipe = self.redis.pipeline(transaction=False)
            for _, instance_id, _ in batch:
                pipe.hmget(self.keys.instance(instance_id).meta, "name", "completed")
            for (status, _, created), (raw_name, completed) in zip(batch, pipe.execute()):
                done = _int(completed)
                if raw_name is None or done is None:
                    continue  # purged meanwhile
                durations.setdefault(raw_name.decode(errors="replace"), []).append(max(0, done - created))
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
        for member in self.redis.sscan_iter(key, count=limit):
            members.add(member)
            if len(members) >= limit:
                break
        ids = sorted(m.decode() for m in members)
        found = self.summaries(ids)
        known = {s["instance_id"] for s in found}
        found += [{"instance_id": i, "name": None, "status": PURGED} for i in ids if i not in known]
        return found, total

    def version(self, instance_id: str) -> tuple[int, str] | None:
        """(history version, status): what a live page polls to know whether anything changed."""
        ver, status, updated = self.redis.hmget(self.keys.instance(instance_id).meta, "ver", "status", "updated")
        if status is None:
            return None
        return int(ver or 0), f"{status.decode()}:{(updated or b'0').decode()}"

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
            out.append({"id": entry_id.decode(), "kind": event.kind, "ts": event.ts,
                        "name": getattr(event, "name", None), "seq": getattr(event, "seq", None)})
        return out, int(total)

    def waiting_for(self, instance_id: str, limit: int = 200) -> dict[str, Any]:
        """What the blocked workflow waits on: event names (tokens ``e:<name>``) and how many calls
        (``t:<seq>``), plus the mode (``all`` / ``any``) the engine recorded with its last step."""
        k = self.keys.instance(instance_id)
        tokens: list[str] = []
        for token in self.redis.sscan_iter(k.wait, count=limit):
            tokens.append(token.decode(errors="replace"))
            if len(tokens) >= limit:
                break
        mode = self.redis.hget(k.meta, "wmode")
        events = sorted(t[2:] for t in tokens if t.startswith("e:"))
        return {"mode": mode.decode() if mode else None, "events": events,
                "calls": sum(1 for t in tokens if t.startswith("t:"))}

    def history(self, instance_id: str) -> list[HistoryEvent]:
        return self.store.get_history(instance_id)


__all__ = ["DashboardQueries", "STATUSES", "percentile", "parse_status", "SCAN_BUDGET"]
