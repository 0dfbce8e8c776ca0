"""The store's key names as tests read them raw: the default prefix and shard count a stack runs with."""

from __future__ import annotations

from typing import Any

from orchestrator.store.keys import KeySchema

KEYS = KeySchema("orch")


def key(instance_id: str, suffix: str) -> str:
    """One of an instance's own keys (``meta``, ``hist``, ``inbox``, ``tasks``, ``wait``, ``outbox``...)."""
    return str(getattr(KEYS.instance(instance_id), suffix))


def shard_total(r: Any, what: str) -> int:
    """ZCARD of one shard key (``ready``, ``outbox``, ``timers``, ``activities``, ``expire``) over every shard."""
    return sum(int(r.zcard(getattr(shard, what))) for shard in KEYS.shards())


def index_total(r: Any, status: str | None = None, name: str | None = None) -> int:
    """How many instances a listing index holds, over every shard."""
    return sum(int(r.zcard(shard.index(status, name))) for shard in KEYS.shards())


def shard_entries(r: Any, what: str) -> list[bytes]:
    return [m for shard in KEYS.shards() for m in r.zrange(getattr(shard, what), 0, -1)]


def score(r: Any, what: str, entry: str) -> float | None:
    """The score of ``entry`` (an id, or ``<id>|<task>``) in its shard's ``what`` set."""
    return r.zscore(getattr(KEYS.shard_of(entry.split("|")[0]), what), entry)  # type: ignore[no-any-return]
