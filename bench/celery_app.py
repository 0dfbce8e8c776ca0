"""The Celery peers' app: the same no-op tasks, with or without the Redis result backend.

Workers run it as ``celery -A bench.celery_app:app worker`` with ``BENCH_CELERY_MODE`` = ``raw`` (no result
backend, results ignored: plain Celery's fastest setup) or ``backend`` (Redis result backend, results
stored: what chains that pass results and chords need). Everything else is Celery's default, as a user
would run it (JSON messages, prefetch multiplier 4, early acks).

Completion of a chain is visible without a result backend because its last task bumps a counter in
Redis; sequential latency comes from ``stamp`` pushing its wall time to a list. The benchmark subtracts
these instrumentation commands from the per-step command counts.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

MODES = ("raw", "backend")
_redis: dict[str, redis.Redis] = {}


def queue_for(mode: str) -> str:
    return f"bench.celery.{mode}"


def make_app(mode: str, url: str) -> Celery:
    if mode not in MODES:
        raise ValueError(f"BENCH_CELERY_MODE must be one of {MODES}, got {mode!r}")
    app = Celery(f"bench-{mode}", broker=url, backend=url if mode == "backend" else None, set_as_current=False)
    app.conf.update(
        task_ignore_result=mode == "raw",
        task_default_queue=queue_for(mode),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )

    def store() -> redis.Redis:
        if "r" not in _redis:
            _redis["r"] = redis.Redis.from_url(url)
        return _redis["r"]

    @app.task(name="bench.noop", shared=False)
    def noop(*_: Any) -> None:
        return None

    @app.task(name="bench.stamp", shared=False)
    def stamp(key: str) -> None:
        store().rpush(key, repr(time.time()))

    @app.task(name="bench.done", shared=False)
    def done(*_: Any, key: str) -> None:
        store().incr(key)

    return app


def __getattr__(name: str) -> Any:
    """``app`` for ``celery -A bench.celery_app:app``, configured from the environment."""
    if name != "app":
        raise AttributeError(name)
    url = os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("set REDIS_URL to the benchmark's private Redis before starting a bench Celery worker")
    app = make_app(os.environ.get("BENCH_CELERY_MODE", "raw"), url)
    globals()["app"] = app
    return app
