"""The Redis a test app's activities record their side effects in (the pool's ``REDIS_URL``)."""

from __future__ import annotations

import functools
import os

import redis


@functools.cache
def app_redis() -> redis.Redis:
    """One client per worker process, made on first use (after the prefork fork)."""
    return redis.Redis.from_url(os.environ["REDIS_URL"])
