"""Riding out Redis trouble where the work is, instead of giving the work up.

When Redis is unreachable, refuses writes at ``maxmemory`` (OOM) or was demoted to a read-only
replica by a failover, a step or an activity's delivery fails with a retryable store error
(``store.connection.STORE_RETRYABLE``). Handing it to Celery's retry needs a new message, which
the same Redis refuses too, and an activity's result held in memory would be lost (the attempt runs
again after ``visibility_timeout``). So the work retries here, backing off up to 5 s, for
``redis_retry_seconds``; only then is the error raised (and Celery's autoretry takes over).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from ..store.connection import STORE_RETRYABLE

log = logging.getLogger("orchestrator.worker")
T = TypeVar("T")


def ride_out(work: Callable[[], T], what: str, patience: float) -> T:
    """``work()``, retried while it fails with a retryable store error, for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            return work()
        except STORE_RETRYABLE as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: Redis cannot take it now (%s: %s); retrying in %.1f s", what, type(exc).__name__,
                        exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


__all__ = ["ride_out"]
