"""Who polls which shard: the pools running background duties divide the shards by rendezvous hashing.

Each process that runs duties (timers, sweeps, retention) marks its registry record ``duties``
(worker/liveness.py). Every sweep it reads the live duty processes and takes the shards for which
it has the highest ``sha1("<process id>|<shard>")``: every shard has exactly one owner among the
processes all agree are live, a pool joining or leaving moves only about 1/n of the shards, and the
total polling cost is O(shards) whatever the number of pools. While views differ (a process that
just joined, one whose heartbeat is about to expire) a shard may be polled by two processes for a
sweep, which the scripts make harmless; a dead owner's shards are taken over once its heartbeat
expires (``process_expiry``, 10 s), so its timers may fire that much later.
"""

from __future__ import annotations

import hashlib


def owner(shard: int, processes: list[str]) -> str:
    return max(processes, key=lambda p: hashlib.sha1(f"{p}|{shard}".encode()).digest())


def my_shards(me: str, processes: list[str], count: int) -> list[int]:
    """The shards ``me`` polls among ``processes`` (``me`` counted whether listed or not)."""
    everyone = sorted(set(processes) | {me})
    return [n for n in range(count) if owner(n, everyone) == me]


__all__ = ["my_shards", "owner"]
