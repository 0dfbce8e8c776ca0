"""The store's monitoring keys: the API log stream, the aggregated metrics hash, the backlog gauges,
the circuit breakers' state and the broker's queue lengths.

None of these is workflow state: the engine never reads them to decide anything but whether an
activity's circuit is open. They are here so that no module outside ``store/`` talks to Redis;
``orchestrator.apilog``, ``orchestrator.metrics`` and ``worker/circuit.py`` hold the logic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import redis

from ..core.flow import priority_lists
from ..settings import redact_url
from .connection import connect

if TYPE_CHECKING:
    from .redis_store import RedisStore

API_LOG_MAXLEN = 10_000
# kombu's Redis transport keeps one list per priority: the queue's name, then these suffixes (every
# priority 0..9 the engine uses, core/flow.py).
_PRIORITY_SUFFIXES = tuple(name.removeprefix("q") for name in priority_lists("q"))


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# -- API log (orchestrator.apilog) ------------------------------------------------------------------
def append_api_log(store: RedisStore, entry: Mapping[str, str]) -> str:
    """Append one entry to the capped stream; its stream id."""
    fields: dict[Any, Any] = dict(entry)
    return _text(store.redis.xadd(store.keys.apilog, fields, maxlen=API_LOG_MAXLEN, approximate=True))


def read_api_log(store: RedisStore, *, high: str, low: str, limit: int) -> list[dict[str, str]]:
    """Entries newest first between two stream ids (``+`` / ``-`` / ``(<id>`` as XREVRANGE takes them)."""
    out = []
    for entry_id, fields in store.redis.xrevrange(store.keys.apilog, high, low, count=limit) or []:
        item = {_text(k): _text(v) for k, v in (fields or {}).items()}
        item["id"] = _text(entry_id)
        out.append(item)
    return out


# -- metrics (orchestrator.metrics) ---------------------------------------------------------------
def add_metric_increments(client: redis.Redis, key: str, increments: Mapping[str, float]) -> None:
    """Add every increment to the metrics hash ``key`` (a store's ``keys.metrics``), in one pipelined
    round trip. Takes the store's client, not the store: the metrics buffers outlive the stores."""
    pipe = client.pipeline(transaction=False)
    for field, amount in increments.items():
        pipe.hincrbyfloat(key, field, amount)
    pipe.execute()


def read_metrics(store: RedisStore) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in store.redis.hgetall(store.keys.metrics).items()}


def backlog(store: RedisStore, now: int) -> dict[str, Any]:
    """Sizes of the work indexes over every shard: ready, outbox, timers (all and due), oldest due timer."""
    ready = outbox = timers = due = 0
    oldest: float | None = None
    shards = store.keys.shards()
    pipe = store.redis.pipeline(transaction=False)  # one round trip for every shard
    for shard in shards:
        pipe.zcard(shard.ready)
        pipe.zcard(shard.outbox)
        pipe.zcard(shard.timers)
        pipe.zcount(shard.timers, "-inf", now)
        pipe.zrangebyscore(shard.timers, "-inf", now, start=0, num=1, withscores=True)
    replies = pipe.execute()
    for n in range(len(shards)):
        r, o, t, d, head = replies[5 * n:5 * n + 5]
        ready, outbox, timers, due = ready + r, outbox + o, timers + t, due + d
        if head and (oldest is None or head[0][1] < oldest):
            oldest = head[0][1]
    return {"ready": ready, "outbox": outbox, "timers": timers, "timers_due": due, "oldest_due": oldest}


def queue_lengths(client: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each Celery queue on a Redis broker."""
    names = sorted(set(queues))
    pipe = client.pipeline(transaction=False)
    for queue in names:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    lengths = pipe.execute()
    n = len(_PRIORITY_SUFFIXES)
    return {q: sum(lengths[i * n:(i + 1) * n]) for i, q in enumerate(names)}


def broker_client(store: RedisStore, broker_url: str) -> redis.Redis:
    """A client for a Redis broker: the store's own when the broker is the store's Redis."""
    url = getattr(store.redis, "described_url", None)
    return store.redis if broker_url == url else connect(broker_url)


# -- circuit breakers (worker/circuit.py) ---------------------------------------------------------
def circuit_open_until(store: RedisStore, app_id: str, activity: str) -> int | None:
    raw = store.redis.hget(store.keys.circuit(app_id, activity), "open_until")
    return int(raw) if raw is not None else None


def circuit_failure(store: RedisStore, app_id: str, activity: str, now: int, threshold: int, cooldown_ms: int) -> int:
    """Count one consecutive failure; the open-until time (ms) when it opened the circuit, else 0."""
    return store.scripts.circuit_failure(store.keys.circuit(app_id, activity), now, threshold, cooldown_ms)


def circuit_reset(store: RedisStore, app_id: str, activity: str) -> None:
    store.redis.delete(store.keys.circuit(app_id, activity))


def circuit_state(store: RedisStore, app_id: str, activity: str) -> dict[str, int]:
    raw = {_text(k): int(v) for k, v in store.redis.hgetall(store.keys.circuit(app_id, activity)).items()}
    return {k: raw.get(k, 0) for k in ("failures", "open_until", "opened")}


__all__ = ["API_LOG_MAXLEN", "add_metric_increments", "append_api_log", "backlog", "broker_client",
           "circuit_failure", "circuit_open_until", "circuit_reset", "circuit_state", "queue_lengths",
           "durability_risks", "read_api_log", "read_metrics"]


def durability_risks(store: RedisStore) -> list[str]:
    """What in the Redis server's configuration can lose workflows (a pool warns of each at start):
    a ``maxmemory-policy`` that evicts keys, and persistence without AOF. Read with ``INFO`` (managed
    Redis services often disable ``CONFIG``); an answer that cannot be read is no warning."""
    try:
        info = store.redis.info("memory") | store.redis.info("persistence")
    except redis.exceptions.RedisError:
        return []
    where = f"Redis at {redact_url(getattr(store.redis, 'described_url', '') or '?')}"
    risks = []
    policy = _text(info.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        risks.append(f"{where} has maxmemory-policy {policy}: at maxmemory it may evict keys, and an evicted "
                     "history, inbox or index loses workflows. Set maxmemory-policy noeviction (config/redis.conf); "
                     "Redis then refuses writes when full, which pools ride out")
    if str(info.get("aof_enabled", "1")) in ("0", "no"):
        risks.append(f"{where} runs without AOF (appendonly no): a crash of Redis loses every step since its "
                     "last RDB snapshot. Set appendonly yes (config/redis.conf) for production")
    return risks
