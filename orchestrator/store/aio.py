"""The store's reads on redis-py's asyncio client: what ``orchestrator.aio.DaprWorkflowClient``
polls without holding a thread (an instance's metadata, the app a workflow name is served by)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.asyncio.cluster
import redis.asyncio.sentinel

from .connection import cluster_options, is_cluster_url, is_sentinel_url, redact_url, sentinel_options, url_problem
from .keys import KeySchema, validate_instance_id
from .records import InstanceMeta


def async_client(url: str) -> Any:
    """redis-py's asyncio client for any store URL the sync client takes: a Redis, a Redis Cluster
    (its startup nodes; commands go to their key's node) or the master a Sentinel names."""
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(f"invalid Redis URL {redact_url(url)!r} (setting redis_url / REDIS_URL): {problem}")
    if is_cluster_url(url):
        hosts, options = cluster_options(url)
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in hosts]
        return redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **options)
    if is_sentinel_url(url):
        hosts, service, sentinel_kwargs, options = sentinel_options(url)
        sentinel = redis.asyncio.sentinel.Sentinel(hosts, sentinel_kwargs=sentinel_kwargs or None,
                                                   socket_timeout=options.get("socket_timeout", 5.0))
        return sentinel.master_for(service, **options)
    try:
        return aioredis.Redis.from_url(url)
    except ValueError as exc:  # redis-py's message for a bad scheme lists the valid ones
        raise ValueError(f"invalid Redis URL {redact_url(url)!r} (setting redis_url / REDIS_URL): {exc}") from exc


class AsyncStoreReader:
    def __init__(self, url: str, prefix: str = "orch") -> None:
        self.redis: Any = async_client(url)
        self.keys = KeySchema(prefix)

    async def get_meta(self, instance_id: str) -> InstanceMeta | None:
        raw = await self.redis.hgetall(self.keys.instance(validate_instance_id(instance_id)).meta)
        return InstanceMeta.from_hash(instance_id, dict(raw)) if raw else None

    async def close(self) -> None:
        await self.redis.aclose()


__all__ = ["AsyncStoreReader", "async_client"]
