"""The store's reads on redis-py's asyncio client: what ``orchestrator.aio.DaprWorkflowClient``
polls without holding a thread (an instance's metadata, the app a workflow name is served by)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .connection import url_problem
from .keys import KeySchema, validate_instance_id
from .records import InstanceMeta


class AsyncStoreReader:
    def __init__(self, url: str, prefix: str = "orch") -> None:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(f"invalid Redis URL (setting redis_url / REDIS_URL): {problem}")
        self.redis: Any = aioredis.Redis.from_url(url)
        self.keys = KeySchema(prefix)

    async def get_meta(self, instance_id: str) -> InstanceMeta | None:
        raw = await self.redis.hgetall(self.keys.instance(validate_instance_id(instance_id)).meta)
        return InstanceMeta.from_hash(instance_id, dict(raw)) if raw else None

    async def close(self) -> None:
        await self.redis.aclose()


__all__ = ["AsyncStoreReader"]
