"""orchestrator.metrics: increments buffered per process, aggregated in one Redis hash, exposed in
Prometheus text format (fakeredis: this is storage-level behaviour, no worker needed)."""

from __future__ import annotations

import sys

import fakeredis
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import metrics
from orchestrator.http import prometheus
from orchestrator.store.redis_store import RedisStore


def render(store: RedisStore, **sources) -> bytes:
    return prometheus.render(lambda: metrics.read_recorded(store), lambda: metrics.live_gauges(store), **sources)


@pytest.fixture
def store() -> RedisStore:
    return RedisStore(fakeredis.FakeRedis(), "t")


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def test_counters_and_histograms_add_up_across_flushes(store: RedisStore) -> None:
    metrics.record_step(store, "wf", "PENDING", "RUNNING", 0.003, history_events=4, inbox_events=1)
    metrics.record_step(store, "wf", "RUNNING", "COMPLETED", 0.2, history_events=9, inbox_events=3)
    metrics.flush()
    metrics.record_step(store, "wf", "RUNNING", "FAILED", 7.0, history_events=12, inbox_events=1)
    metrics.record_activity(store, "act", 0.01, failed=False)
    metrics.record_activity(store, "act", 0.02, failed=True)
    metrics.record_step_conflict(store, "wf")
    metrics.flush()
    got = samples(render(store))
    wf = (("workflow", "wf"),)
    assert got[("orchestrator_workflows_started_total", wf)] == 1
    assert got[("orchestrator_workflows_finished_total", (("status", "COMPLETED"), ("workflow", "wf")))] == 1
    assert got[("orchestrator_workflows_finished_total", (("status", "FAILED"), ("workflow", "wf")))] == 1
    assert got[("orchestrator_step_conflicts_total", wf)] == 1
    # Cumulative buckets: 0.003 <= 0.005; 0.2 <= 0.25; 7.0 <= 10.
    assert got[("orchestrator_step_duration_seconds_bucket", (("le", "0.005"), ("workflow", "wf")))] == 1
    assert got[("orchestrator_step_duration_seconds_bucket", (("le", "0.25"), ("workflow", "wf")))] == 2
    assert got[("orchestrator_step_duration_seconds_bucket", (("le", "5.0"), ("workflow", "wf")))] == 2
    assert got[("orchestrator_step_duration_seconds_bucket", (("le", "10.0"), ("workflow", "wf")))] == 3
    assert got[("orchestrator_step_duration_seconds_bucket", (("le", "+Inf"), ("workflow", "wf")))] == 3
    assert got[("orchestrator_step_duration_seconds_count", wf)] == 3
    assert got[("orchestrator_step_duration_seconds_sum", wf)] == pytest.approx(7.203)
    assert got[("orchestrator_history_events_sum", wf)] == 25
    act = (("activity", "act"),)
    assert got[("orchestrator_activity_attempts_total", act)] == 2
    assert got[("orchestrator_activity_failures_total", act)] == 1


def test_live_gauges_read_the_indexes(store: RedisStore) -> None:
    r, k = store.redis, store.keys
    for member, due in {"a|0.1": 1_000, "b|0.1": 5_000, "c|0.1": 10**15}.items():  # c: far in the future
        r.zadd(k.shard_of(member[0]).timers, {member: due})
    r.zadd(k.shard_of("x").ready, {"x": 1})
    gauges = metrics.live_gauges(store, now_ms=10_000)
    assert gauges == {"ready": 1, "outbox": 0, "timers": 3, "timers_due": 2, "timer_lag": 9.0}
    text = render(store, counts=lambda: {"by_name": {"wf": {"by_status": {"RUNNING": 2}}}},
                          queues=lambda: {"orchestrator.default": 4})
    got = samples(text)
    assert got[("orchestrator_instances", (("status", "RUNNING"), ("workflow", "wf")))] == 2
    assert got[("orchestrator_queue_messages", (("queue", "orchestrator.default"),))] == 4
    assert got[("orchestrator_timers_due", ())] == 2


def test_queue_lengths_sum_kombu_priority_lists(store: RedisStore) -> None:
    r = store.redis
    r.rpush("orchestrator.a", "m1", "m2")
    r.rpush("orchestrator.a\x06\x169", "m3")
    assert metrics.queue_lengths(r, ["orchestrator.a", "orchestrator.b"]) == {"orchestrator.a": 3, "orchestrator.b": 0}


def test_a_failed_flush_keeps_the_increments(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics.record_activity(store, "flaky", 0.1, failed=False)
    real = store.redis.pipeline

    def broken(*args: object, **kwargs: object) -> object:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(store.redis, "pipeline", broken)
    metrics.flush()  # logs and keeps the batch
    monkeypatch.setattr(store.redis, "pipeline", real)
    metrics.flush()
    got = samples(render(store))
    assert got[("orchestrator_activity_attempts_total", (("activity", "flaky"),))] == 1


def test_recording_never_raises_and_render_needs_prometheus_client(store: RedisStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    metrics.record_step(object(), "wf", "PENDING", "RUNNING", 0.1, history_events=1, inbox_events=1)  # logged
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    metrics.record_activity(store, "still-recorded", 0.1, failed=False)
    with pytest.raises(prometheus.MetricsUnavailable, match="orchestrator\\[http\\]"):
        render(store)


def test_a_finished_instance_records_its_latency_per_workflow_type_and_status(store: RedisStore) -> None:
    metrics.record_step(store, "orders", "RUNNING", "COMPLETED", 0.01, history_events=4, inbox_events=1, lifetime=42.0)
    metrics.record_step(store, "orders", "RUNNING", "FAILED", 0.01, history_events=4, inbox_events=1, lifetime=0.2)
    metrics.record_step(store, "billing", "PENDING", "COMPLETED", 0.01, history_events=4, inbox_events=1, lifetime=3.0)
    metrics.record_step(store, "orders", "RUNNING", "RUNNING", 0.01, history_events=4, inbox_events=1, lifetime=9.0)
    metrics.flush()
    got = samples(render(store))
    done = (("status", "COMPLETED"), ("workflow", "orders"))
    assert got[("orchestrator_workflow_duration_seconds_count", done)] == 1
    assert got[("orchestrator_workflow_duration_seconds_sum", done)] == 42.0
    assert got[("orchestrator_workflow_duration_seconds_bucket", (("le", "30.0"), *done))] == 0
    assert got[("orchestrator_workflow_duration_seconds_bucket", (("le", "60.0"), *done))] == 1
    assert got[("orchestrator_workflow_duration_seconds_count", (("status", "FAILED"), ("workflow", "orders")))] == 1
    assert got[("orchestrator_workflow_duration_seconds_count", (("status", "COMPLETED"), ("workflow", "billing")))] == 1
    assert ("orchestrator_workflow_duration_seconds_count", (("status", "RUNNING"), ("workflow", "orders"))) not in got
