"""Metrics: what the engine measures, defined once here, aggregated across every process via Redis.

Why Redis and not one prometheus_client registry per process: a deployment runs many worker
processes (Celery prefork children, several hosts, ``docker compose up --scale worker=N``). Scraping
each of them needs service discovery, and prefork children need prometheus_client's multiprocess
directory. Instead every process adds its increments to an in-memory buffer that a daemon thread
adds to one Redis hash (``<prefix>:metrics``, HINCRBYFLOAT, one pipelined round trip) about once a
second. The HTTP API's ``/metrics`` turns that hash, plus gauges read live from the store's indexes
(ready/outbox/timer backlog, queue lengths, instances by status), into Prometheus exposition.

So recording needs nothing but redis-py (workers do not need prometheus_client), and ``/metrics``
on any API replica shows cluster-wide totals. Exposition (``orchestrator.http.prometheus``) uses
prometheus_client (extra ``http``); recording works without it. A crash
loses at most the last second of increments, which is acceptable for monitoring (never for
workflow state, which is not kept here).

The pure core never sees any of this: the engine calls :func:`record_step` and
:func:`record_activity` after it has committed.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .core.vocabulary import TERMINAL, Status
from .store import monitoring
from .store.connection import StoreError

log = logging.getLogger("orchestrator.metrics")
FLUSH_INTERVAL_S = 1.0

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
COUNT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
SIZE_BUCKETS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)


@dataclass(frozen=True)
class Metric:
    """One metric family. Counters are exposed with the ``_total`` suffix."""

    name: str
    kind: str  # "counter" or "histogram"
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


WORKFLOWS_STARTED = Metric("orchestrator_workflows_started", "counter",
                           "Instances whose first step ran, by workflow name.", ("workflow",))
WORKFLOWS_FINISHED = Metric("orchestrator_workflows_finished", "counter",
                            "Instances that reached a final status (COMPLETED, FAILED, TERMINATED).",
                            ("workflow", "status"))
STEP_SECONDS = Metric("orchestrator_step_duration_seconds", "histogram",
                      "Time of one committed orchestration step (load, replay, commit).", ("workflow",),
                      LATENCY_BUCKETS)
STEP_CONFLICTS = Metric("orchestrator_step_conflicts", "counter",
                        "Steps that lost the optimistic-concurrency race and were recomputed.", ("workflow",))
STEP_INBOX = Metric("orchestrator_step_inbox_events", "histogram",
                    "Inbox depth a step found: events delivered since the previous step.", ("workflow",),
                    COUNT_BUCKETS)
HISTORY_EVENTS = Metric("orchestrator_history_events", "histogram",
                        "History size (events) of an instance after each committed step.", ("workflow",),
                        SIZE_BUCKETS)
ACTIVITY_ATTEMPTS = Metric("orchestrator_activity_attempts", "counter",
                           "Activity executions, retries included.", ("activity",))
ACTIVITY_FAILURES = Metric("orchestrator_activity_failures", "counter",
                           "Activity executions that raised (each retry counts).", ("activity",))
ACTIVITY_SECONDS = Metric("orchestrator_activity_duration_seconds", "histogram",
                          "Run time of one activity execution.", ("activity",), LATENCY_BUCKETS)
HISTORY_WARNINGS = Metric("orchestrator_history_warnings", "counter",
                          "Times an instance's history passed a multiple of history_warn_events.", ("workflow",))
# Workflows run from milliseconds to days: buckets from 10 ms to a week.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
WORKFLOW_SECONDS = Metric("orchestrator_workflow_duration_seconds", "histogram",
                          "Time from an instance's creation to its final status, by workflow and status.",
                          ("workflow", "status"), RUN_BUCKETS)

RECORDED: tuple[Metric, ...] = (WORKFLOWS_STARTED, WORKFLOWS_FINISHED, STEP_SECONDS, STEP_CONFLICTS, STEP_INBOX,
                                HISTORY_EVENTS, ACTIVITY_ATTEMPTS, ACTIVITY_FAILURES, ACTIVITY_SECONDS,
                                HISTORY_WARNINGS, WORKFLOW_SECONDS)
_BY_NAME = {m.name: m for m in RECORDED}


# -- recording (any process; needs only redis-py) -------------------------------------------------
class _Buffer:
    """Increments for one Redis hash, waiting for the next flush."""

    def __init__(self, client: Any, key: str) -> None:
        self.client_ref, self.key = weakref.ref(client), key  # weak: a dropped store is not kept alive
        self.pending: dict[str, float] = {}
        self.lock = threading.Lock()

    def add(self, field: str, amount: float) -> None:
        with self.lock:
            self.pending[field] = self.pending.get(field, 0.0) + amount

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, {}
        client = self.client_ref()
        if not batch or client is None:
            return
        try:
            monitoring.add_metric_increments(client, self.key, batch)
        except StoreError as exc:
            log.debug("metrics flush to %s failed (%s); keeping the increments for the next one", self.key, exc)
            with self.lock:
                for field, amount in batch.items():
                    self.pending[field] = self.pending.get(field, 0.0) + amount


# redis client -> {hash key: buffer}; weak keys, so stores that are dropped leave no trace here.
_buffers: weakref.WeakKeyDictionary[Any, dict[str, _Buffer]] = weakref.WeakKeyDictionary()
_state_lock = threading.Lock()
_flusher: threading.Thread | None = None


def _flush_loop() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL_S)
        try:
            flush()
        except Exception:  # noqa: BLE001 - the thread must outlive any one flush, or metrics stop for good
            log.warning("metrics flush failed; trying again in %s s", FLUSH_INTERVAL_S, exc_info=True)


def flush() -> None:
    """Write every buffered increment to Redis now (also runs every second and at exit)."""
    with _state_lock:
        buffers = [buf for per_client in list(_buffers.values()) for buf in list(per_client.values())]
    for buf in buffers:
        buf.flush()


def _buffer(store: Any) -> _Buffer:
    global _flusher
    client, key = store.redis, store.keys.metrics
    buf = _buffers.get(client, {}).get(key)
    if buf is None:
        with _state_lock:
            buf = _buffers.setdefault(client, {}).setdefault(key, _Buffer(client, key))
            if _flusher is None:
                _flusher = threading.Thread(target=_flush_loop, name="orchestrator-metrics", daemon=True)
                _flusher.start()
    return buf


def _after_fork_in_child() -> None:
    # The parent flushes what it buffered; a forked child must not add it a second time.
    global _flusher, _state_lock
    _buffers.clear()
    _flusher, _state_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(flush)


def _field(metric: Metric, labels: Iterable[str], part: str | int = "") -> str:
    return json.dumps([metric.name, [str(v) for v in labels], part], separators=(",", ":"))


def inc(store: Any, metric: Metric, labels: Iterable[str], amount: float = 1.0) -> None:
    """Add ``amount`` to a counter. ``store`` is a RedisStore (anything with ``redis`` and ``keys``)."""
    _buffer(store).add(_field(metric, labels), amount)


def observe(store: Any, metric: Metric, labels: Iterable[str], value: float) -> None:
    """Record one observation of a histogram."""
    labels = list(labels)
    index = next((i for i, bound in enumerate(metric.buckets) if value <= bound), len(metric.buckets))
    buf = _buffer(store)
    buf.add(_field(metric, labels, index), 1)
    buf.add(_field(metric, labels, "sum"), value)


def record_step(store: Any, workflow: str, before: str, after: str, seconds: float, *,
                history_events: int, inbox_events: int, lifetime: float | None = None) -> None:
    """A committed step of ``workflow`` moved an instance from status ``before`` to ``after``;
    ``lifetime``: seconds since the instance was created (its latency, once it is final)."""
    try:
        if before == Status.PENDING and after != Status.PENDING:
            inc(store, WORKFLOWS_STARTED, [workflow])
        if after in TERMINAL and before not in TERMINAL:
            inc(store, WORKFLOWS_FINISHED, [workflow, after])
            if lifetime is not None:
                observe(store, WORKFLOW_SECONDS, [workflow, after], max(0.0, lifetime))
        observe(store, STEP_SECONDS, [workflow], seconds)
        observe(store, STEP_INBOX, [workflow], inbox_events)
        observe(store, HISTORY_EVENTS, [workflow], history_events)
    except Exception:  # noqa: BLE001 - metrics must never break a step
        log.exception("recording step metrics failed")


def record_step_conflict(store: Any, workflow: str) -> None:
    try:
        inc(store, STEP_CONFLICTS, [workflow])
    except Exception:  # noqa: BLE001
        log.exception("recording step metrics failed")


def record_history_warning(store: Any, workflow: str) -> None:
    try:
        inc(store, HISTORY_WARNINGS, [workflow])
    except Exception:  # noqa: BLE001
        log.exception("recording history metrics failed")


def record_activity(store: Any, activity: str, seconds: float, failed: bool) -> None:
    """One execution (attempt) of ``activity`` finished, successfully or not."""
    try:
        inc(store, ACTIVITY_ATTEMPTS, [activity])
        if failed:
            inc(store, ACTIVITY_FAILURES, [activity])
        observe(store, ACTIVITY_SECONDS, [activity], seconds)
    except Exception:  # noqa: BLE001
        log.exception("recording activity metrics failed")


# -- reading back (the HTTP API) --------------------------------------------------------------------
@dataclass
class Sample:
    labels: tuple[str, ...]
    value: float = 0.0
    buckets: list[float] | None = None  # per bucket (not cumulative), +Inf last
    sum: float = 0.0


def read_recorded(store: Any) -> dict[str, dict[tuple[str, ...], Sample]]:
    """The aggregated hash as {metric name: {label values: Sample}}; unknown fields are ignored."""
    out: dict[str, dict[tuple[str, ...], Sample]] = {m.name: {} for m in RECORDED}
    for raw_field, raw_value in monitoring.read_metrics(store).items():
        try:
            name, labels, part = json.loads(raw_field)
            metric, value = _BY_NAME[name], float(raw_value)
        except (ValueError, KeyError, TypeError):
            continue
        key = tuple(labels)
        sample = out[name].setdefault(key, Sample(key))
        if metric.kind == "counter":
            sample.value += value
        elif part == "sum":
            sample.sum += value
        elif isinstance(part, int) and 0 <= part <= len(metric.buckets):
            if sample.buckets is None:
                sample.buckets = [0.0] * (len(metric.buckets) + 1)
            sample.buckets[part] += value
    return out


def queue_lengths(client: Any, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each Celery queue on a Redis broker (kombu keeps one list per priority)."""
    return monitoring.queue_lengths(client, queues)


def live_gauges(store: Any, now_ms: int | None = None) -> dict[str, float]:
    """Backlog gauges read from the store's work indexes at scrape time."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    backlog = monitoring.backlog(store, now)
    oldest = backlog.pop("oldest_due")
    lag = max(0.0, (now - oldest) / 1000) if oldest is not None else 0.0
    return {**backlog, "timer_lag": lag}


__all__ = [
    "Metric",
    "RECORDED",
    "flush",
    "inc",
    "live_gauges",
    "observe",
    "queue_lengths",
    "read_recorded",
    "record_activity",
    "record_history_warning",
    "record_step",
    "record_step_conflict",
]
