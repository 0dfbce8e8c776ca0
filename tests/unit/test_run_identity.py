"""Run identity at the store and planner level (issue 19, class 1): races too narrow to hit on purpose
with a pool, set up exactly on fakeredis with the real scripts and the real engine."""

from __future__ import annotations

from typing import Any

from orchestrator.core.history import ExecutionStarted, TaskCompleted
from orchestrator.core.registry import Registry
from orchestrator.core.vocabulary import task_token
from orchestrator.store.redis_store import RedisStore
from orchestrator.store.scripts import DeliverCode
from orchestrator.testing import fake_redis
from orchestrator.worker.engine import Engine

NOW = 1_700_000_000_000


class Capture:
    def __init__(self) -> None:
        self.activities: list[dict[str, Any]] = []

    def send_step(self, instance_id: str, app_id: str) -> None:
        pass

    def send_activity(self, record: dict[str, Any], app_id: str) -> None:
        self.activities.append(record)


def generations(ctx: Any, n: int):
    """Call #1 in every generation; generation 0 continues as new."""
    result = yield ctx.call_activity("act", input=n)
    if n == 0:
        ctx.continue_as_new(1)
        return None
    return result


def engine_for() -> tuple[Engine, Capture]:
    registry = Registry()
    registry.add_workflow(generations, "generations")
    registry.add_activity(lambda ctx, n: n, "act")
    published = Capture()
    store = RedisStore(fake_redis())
    return Engine(store, registry, published, "default", inline_steps=False, clock=lambda: NOW), published


def test_a_result_that_raced_a_continue_as_new_is_not_given_to_the_new_generation():
    engine, published = engine_for()
    store = engine.store
    store.create_instance("i", "generations", "default", ExecutionStarted(ts=NOW, name="generations", input=0), 0,
                          NOW)
    engine.run_step("i")
    run = store.get_meta("i").run
    [first] = published.activities
    assert (first["run"], first["gen"], first["seq"]) == (run, 0, 1)
    key = f"{run}.0.1"
    assert store.deliver("i", TaskCompleted(ts=NOW, seq=1, result="gen 0"), token=task_token(key), task_key=key,
                         now=NOW) == DeliverCode.WAKE
    engine.run_step("i")  # generation 0 continues as new
    assert store.get_meta("i").generation == 1
    # A result of generation 0 that entered the inbox while that step was being decided (it is in the
    # inbox, as the race leaves it: its task key was still outstanding when it was delivered).
    store.deliver("i", TaskCompleted(ts=NOW, seq=1, result="stale"), token=task_token(key), now=NOW)
    engine.run_step("i")
    meta = store.get_meta("i")
    assert meta.status == "RUNNING" and meta.output is None
    assert [e.kind for e in store.get_history("i") if isinstance(e, TaskCompleted)] == []
    assert store.task_outstanding("i", f"{run}.1.1") and not store.load("i").inbox
    second = published.activities[-1]
    assert (second["run"], second["gen"], second["seq"]) == (run, 1, 1)


def test_a_result_for_another_runs_task_key_is_dropped_by_the_store():
    engine, published = engine_for()
    store = engine.store
    store.create_instance("i", "generations", "default", ExecutionStarted(ts=NOW, name="generations", input=5), 5,
                          NOW)
    engine.run_step("i")
    run = store.get_meta("i").run
    other = "0" * 12 if run != "0" * 12 else "f" * 12
    for key in (f"{other}.0.1", "0.1"):  # another run's key, and the key a run without id would use
        assert store.deliver("i", TaskCompleted(ts=NOW, seq=1, result="wrong"), token=task_token(key),
                             task_key=key, now=NOW) == DeliverCode.DUPLICATE
    key = f"{run}.0.1"
    assert store.deliver("i", TaskCompleted(ts=NOW, seq=1, result="right"), token=task_token(key), task_key=key,
                         now=NOW) == DeliverCode.WAKE
    engine.run_step("i")
    assert store.get_meta("i").output == "right"


def test_an_instance_created_before_run_ids_keeps_its_old_keys_until_it_ends():
    """Upgrade: an instance whose metadata has no run id still gets and accepts ``<gen>.<seq>`` keys."""
    engine, published = engine_for()
    store = engine.store
    store.create_instance("old", "generations", "default", ExecutionStarted(ts=NOW, name="generations", input=5), 5,
                          NOW)
    store.redis.hdel(store.keys.instance("old").meta, "run")  # as written before run ids existed
    engine.run_step("old")
    assert published.activities[-1].get("run") == "" and store.task_outstanding("old", "0.1")
    assert store.redis.hget(store.keys.instance("old").meta, "wtok") == b"t:1"  # a wait of one token
    assert store.deliver("old", TaskCompleted(ts=NOW, seq=1, result="legacy"), token=task_token("0.1"),
                         task_key="0.1", now=NOW) == DeliverCode.WAKE
    engine.run_step("old")
    assert store.get_meta("old").output == "legacy"
