"""One listing index read over every shard: pages merged newest first, counts summed.

Each shard keeps its own listing indexes (store/keys.py), sorted sets scored by creation time.
``MergedIndex`` reads the same index of every shard as if it were one: newest first, instances
created in the same millisecond ordered by id (descending, as ``ZREVRANGEBYSCORE`` orders ties).

* a page by offset reads the top ``offset + limit`` of every shard in one pipelined round trip and
  merges them: cheap for the first pages, growing with the offset;
* a page after a cursor (``"<created ms>:<id>"`` of the last row seen) reads ``limit`` entries per
  shard whatever the depth: the way to walk deep;
* a scan (id-prefix and error-type filters, which no index orders) merges per-shard chunks lazily.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

Entry = tuple[float, str, int]  # (creation time, instance id, shard number)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def parse_cursor(cursor: str) -> tuple[int, str]:
    """``"<created ms>:<id>"`` -> (created, id); a malformed cursor raises ValueError naming it."""
    created, sep, instance_id = cursor.partition(":") if isinstance(cursor, str) else ("", "", "")
    if not sep or not instance_id or not created.lstrip("-").isdigit():
        raise ValueError(f"invalid cursor {cursor!r}: expected '<created ms>:<instance id>' as a page returned it")
    return int(created), instance_id


def make_cursor(entry: Entry) -> str:
    return f"{int(entry[0])}:{entry[1]}"


class MergedIndex:
    """The index ``keys[n]`` of every shard ``n``, within the creation range [low, high]."""

    def __init__(self, client: Any, keys: list[str], low: Any = "-inf", high: Any = "+inf") -> None:
        self.client, self.keys, self.low, self.high = client, keys, low, high

    def count(self) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys:
            pipe.zcount(key, self.low, self.high)
        return sum(int(n) for n in pipe.execute())

    def page(self, offset: int, limit: int, *, with_count: bool = False) -> tuple[list[Entry], int]:
        """Entries ``offset`` to ``offset + limit`` of the merged order (and the total, if asked)."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrevrangebyscore(key, self.high, self.low, start=0, num=offset + limit, withscores=True)
            if with_count:
                pipe.zcount(key, self.low, self.high)
        replies = pipe.execute()
        step = 2 if with_count else 1
        runs = [[(float(score), _text(i), n) for i, score in replies[n * step]] for n in range(len(self.keys))]
        total = sum(int(replies[n * step + 1]) for n in range(len(self.keys))) if with_count else 0
        merged = heapq.merge(*runs, key=lambda e: (e[0], e[1]), reverse=True)
        return [e for k, e in enumerate(merged) if k < offset + limit][offset:], total

    def after(self, cursor: str, limit: int) -> list[Entry]:
        """The ``limit`` entries that follow ``cursor`` in the merged order."""
        created, last_id = parse_cursor(cursor)
        high = min(float(created), float(self.high)) if self.high != "+inf" else float(created)
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrevrangebyscore(key, f"({high:.0f}", self.low, start=0, num=limit, withscores=True)
            pipe.zrangebyscore(key, created, created, withscores=True)  # the same millisecond: ordered by id
        replies = pipe.execute()
        runs = []
        for n in range(len(self.keys)):
            ties = sorted(((float(s), _text(i), n) for i, s in replies[2 * n + 1]
                           if _text(i) < last_id and created <= high), reverse=True)
            runs.append(ties + [(float(s), _text(i), n) for i, s in replies[2 * n]])
        merged = heapq.merge(*runs, key=lambda e: (e[0], e[1]), reverse=True)
        return [e for k, e in enumerate(merged) if k < limit]

    def scan(self, chunk: int = 500) -> Iterator[Entry]:
        """Every entry, newest first; each shard read in chunks, as the walk reaches them."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrevrangebyscore(key, self.high, self.low, start=0, num=chunk, withscores=True)
        firsts = pipe.execute()
        return heapq.merge(*(self._shard(n, firsts[n], chunk) for n in range(len(self.keys))),
                           key=lambda e: (e[0], e[1]), reverse=True)

    def _shard(self, n: int, first: list[Any], chunk: int) -> Iterator[Entry]:
        batch, pos = first, 0
        while True:
            for i, score in batch:
                yield float(score), _text(i), n
            if len(batch) < chunk:
                return
            pos += len(batch)
            batch = self.client.zrevrangebyscore(self.keys[n], self.high, self.low, start=pos, num=chunk,
                                                 withscores=True)


__all__ = ["Entry", "MergedIndex", "make_cursor", "parse_cursor"]
