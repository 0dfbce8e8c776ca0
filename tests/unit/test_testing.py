"""orchestrator.testing: time skipping against a real redis-server and the real engine (no pool)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.core.history import ExecutionStarted
from orchestrator.core.registry import Registry
from orchestrator.store.redis_store import RedisStore
from orchestrator.testing import PendingTimer, pending_timers, skip_timers, wait_for_timers
from orchestrator.worker.engine import Engine, now_ms

WEEK = timedelta(days=7)


class RecordingPublisher:
    def __init__(self) -> None:
        self.steps: list[str] = []

    def send_step(self, instance_id: str, app_id: str) -> None:
        self.steps.append(instance_id)

    def send_activity(self, record: dict, app_id: str) -> None:
        raise AssertionError("no activities here")


def week_long_wait(ctx, _):
    yield ctx.create_timer(WEEK)
    return "a week later"


@pytest.fixture
def engine(redis_server):
    registry = Registry()
    registry.add_workflow(week_long_wait, "week_long_wait")
    store = RedisStore.from_url(redis_server.url)
    return Engine(store, registry, RecordingPublisher(), "default", inline_steps=False)


def start(engine: Engine, instance_id: str, start_at: int = 0) -> None:
    now = now_ms()
    engine.store.create_instance(instance_id, "week_long_wait", "default",
                                 ExecutionStarted(ts=now, name="week_long_wait"), None, now, start_at=start_at)
    if not start_at:
        engine.run_step(instance_id)


def test_skipped_timer_fires_once_through_the_normal_path(engine):
    start(engine, "a")
    [timer] = wait_for_timers(engine.store, "a", timeout=2)
    assert timer.instance_id == "a" and not timer.is_scheduled_start
    assert timedelta(days=6, hours=23) < timer.fire_at - datetime.now(UTC) <= WEEK
    assert engine.fire_due_timers() == 0  # not due: a week to go
    assert skip_timers(engine.store, "a", until=timedelta(days=6)) == 0  # not within six days
    assert skip_timers(engine.store, "a", until=datetime.now(UTC) + WEEK + timedelta(seconds=5)) == 1
    assert engine.fire_due_timers() == 1
    assert engine.publisher.steps == ["a"]
    engine.run_step("a")
    assert engine.store.get_meta("a").output == "a week later"
    # Fired timers are gone for good: skipping again cannot re-arm them.
    assert skip_timers(engine.store) == 0
    assert pending_timers(engine.store) == [] and engine.fire_due_timers() == 0


def test_skip_is_limited_to_one_instance_and_covers_scheduled_starts(engine):
    start(engine, "a")
    start(engine, "b")
    start(engine, "later", start_at=now_ms() + 3_600_000)
    assert {t.instance_id for t in pending_timers(engine.store)} == {"a", "b", "later"}
    [scheduled] = pending_timers(engine.store, "later")
    assert scheduled.is_scheduled_start
    assert skip_timers(engine.store, "b") == 1
    assert engine.fire_due_timers() == 1
    assert [t.instance_id for t in pending_timers(engine.store)] == ["later", "a"]  # soonest first
    assert skip_timers(engine.store, "later") == 1
    assert engine.fire_due_timers() == 1  # the start is due: the instance is marked ready
    assert engine.store.get_meta("later").status == "PENDING"
    engine.run_step("later")
    assert engine.store.get_meta("later").status == "RUNNING"


def test_accepts_anything_with_a_store_and_refuses_the_rest(engine):
    class Holder:
        store = engine.store

    start(engine, "a")
    assert len(pending_timers(Holder())) == 1
    with pytest.raises(TypeError, match="WorkflowClient, a WorkflowRuntime or a RedisStore, got str"):
        skip_timers("redis://localhost")
    with pytest.raises(TypeError, match="until must be a datetime, a timedelta or None, got int"):
        skip_timers(engine.store, until=7)
    with pytest.raises(ValueError, match="count must be at least 1"):
        wait_for_timers(engine.store, count=0)
    with pytest.raises(TimeoutError, match="instance 'nobody' has 0 pending timer"):
        wait_for_timers(engine.store, "nobody", timeout=0.05)
    assert isinstance(pending_timers(engine.store)[0], PendingTimer)
