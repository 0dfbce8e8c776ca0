"""The client's operations reads: store health, the process registry, metrics and backlog, queue lengths.

A part of ``WorkflowClient`` (orchestrator/client.py), kept apart so the client module stays readable;
the HTTP API's health and /metrics routes, ``orchestrator pools`` and the dashboard read through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import metrics
from .core.vocabulary import queue_name
from .settings import Settings
from .store import monitoring, pool_names
from .store.redis_store import RedisStore


class OperationsReads:
    """Reads for operating the engine; uses the client's settings, store and clock."""

    settings: Settings
    store: RedisStore
    clock: Callable[[], int]
    _broker: Any  # the broker's Redis client (store/monitoring.py), built on first use

    def ping(self) -> bool:
        """Does the store answer? Raises when it cannot be reached."""
        return self.store.ping()

    def list_processes(self, *, include_dead: bool = False, app: str | None = None) -> list[dict[str, Any]]:
        """The worker processes in the registry (worker/liveness.py): ``list_pools()["items"]``."""
        return self.list_pools(include_dead=include_dead, app=app)["items"]

    def list_pools(self, *, include_dead: bool = False, app: str | None = None) -> dict[str, Any]:
        """``{"items": [...], "mismatches": [...]}`` (store/pool_names.py): the worker processes (of app id
        ``app``), newest heartbeat first, with ``alive`` (dead ones only with ``include_dead``), and per
        app id whose live pools register different workflows, versions or activities, what each lacks."""
        now, expiry = self.clock(), int(self.settings.process_expiry * 1000)
        return pool_names.listing(self.store.liveness.processes(None if include_dead else now - expiry, app), now,
                                  expiry)

    def recorded_metrics(self) -> dict[str, Any]:
        """The metrics every process recorded, aggregated (``orchestrator.metrics.read_recorded``)."""
        return metrics.read_recorded(self.store)

    def backlog(self) -> dict[str, float]:
        """Ready and outbox instances, pending and due timers, the oldest due timer's lag (seconds)."""
        return metrics.live_gauges(self.store, self.clock())

    def queue_lengths(self) -> dict[str, int]:
        """Messages waiting in the Celery queue of every app that registered workflows (Redis brokers
        only: empty for another broker)."""
        broker = self.settings.broker
        if not broker.startswith(("redis://", "rediss://", "unix://")):
            return {}
        if self._broker is None:
            self._broker = monitoring.broker_client(self.store, broker)
        apps = set(self.store.registered_workflows().values())
        return monitoring.queue_lengths(self._broker, (queue_name(app) for app in apps))



__all__ = ["OperationsReads"]
