"""The Redis a test app's activities record their side effects in (the pool's ``REDIS_URL``)."""

from __future__ import annotations

import functools
import os
from typing import Any

from orchestrator.store.connection import connect


@functools.cache
def app_redis() -> Any:
    """One client per worker process, made on first use (after the prefork fork): a Redis, or the
    cluster's client in a cluster run (ORCH_TEST_STORE=cluster)."""
    return connect(os.environ["REDIS_URL"])
