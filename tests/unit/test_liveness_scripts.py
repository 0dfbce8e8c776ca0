"""The liveness scripts on fakeredis: claims taken atomically with the awaited check, a live holder's
copy skipped, a dead holder's work counted as lost and given up on, reaping once (worker/liveness.py)."""

from __future__ import annotations

from orchestrator.core.history import ExecutionStarted, TaskCompleted
from orchestrator.core.vocabulary import LOST_SUFFIX, member, task_token
from orchestrator.store.redis_store import RedisStore
from orchestrator.store.scripts import TakeCode
from orchestrator.store.step_io import Commit
from orchestrator.testing import fake_redis


def _instance_awaiting(store: RedisStore, instance_id: str) -> str:
    store.create_instance(instance_id, "wf", "app", ExecutionStarted(ts=1, name="wf"), None, 1)
    meta = store.get_meta(instance_id)
    key = meta.task_key(1)
    assert store.commit(instance_id, Commit(version=meta.version, now=2, status="RUNNING", tasks=[key],
                                            activities=[key], name="wf", old_status="PENDING")).ok
    return key


def test_an_attempt_is_taken_once_a_live_holder_keeps_it_and_a_dead_one_counts_as_lost():
    store = RedisStore(fake_redis(), "t")
    reg = store.liveness
    key = _instance_awaiting(store, "i")
    reg.beat("a", {"app": "app"}, 100)
    reg.beat("b", {"app": "app"}, 100)
    assert reg.take_attempts("a", [("i", key)], 100, alive_since=90, lost_limit=1) == [(TakeCode.TAKEN, "")]
    assert reg.take_attempts("b", [("i", key)], 101, alive_since=91, lost_limit=1) == [(TakeCode.BUSY, "a")]
    # a stops heartbeating: b takes the attempt over, and it counts once as lost
    assert reg.take_attempts("b", [("i", key)], 200, alive_since=190, lost_limit=1) == [(TakeCode.TAKEN, "")]
    assert store.redis.hget(store.keys.shard_of("i").claims, member("i", key) + LOST_SUFFIX) == b"1"
    # b dies too, and is reaped: lost twice, past the limit, the next taker must fail the attempt
    taken = reg.reap("b", dead_before=300)
    assert taken is not None and taken[1] == [(member("i", key), 2)]
    assert reg.reap("b", dead_before=300) is None  # once, whoever races
    reg.beat("c", {"app": "app"}, 300)
    assert reg.take_attempts("c", [("i", key)], 300, alive_since=290, lost_limit=1) == [(TakeCode.LOST_LIMIT, "")]
    # its delivery drops the claim and the count; a late copy finds it no longer awaited
    store.deliver("i", TaskCompleted(ts=301, seq=1, result=1), token=task_token(key), task_key=key, now=301)
    assert not store.redis.hexists(store.keys.shard_of("i").claims, member("i", key))
    assert not store.redis.hexists(store.keys.shard_of("i").claims, member("i", key) + LOST_SUFFIX)
    assert reg.take_attempts("c", [("i", key)], 302, alive_since=292, lost_limit=1) == [(TakeCode.NOT_AWAITED, "")]


def test_a_step_claim_counts_a_dead_holder_and_the_commit_lets_go():
    store = RedisStore(fake_redis(), "t")
    reg = store.liveness
    _instance_awaiting(store, "s")
    reg.beat("a", {}, 100)
    assert reg.take_step("a", "s", alive_since=90) == (0, "")
    reg.beat("b", {}, 100)
    assert reg.take_step("b", "s", alive_since=90) == (0, "a")  # a looks alive: left to the caller
    assert reg.take_step("b", "s", alive_since=190) == (1, "")  # a's heartbeat expired: lost once
    meta = store.get_meta("s")
    assert store.commit("s", Commit(version=meta.version, now=3, status="RUNNING", claimer="b", keep_wait=True)).ok
    assert store.redis.hkeys(store.keys.shard_of("s").claims) == []  # neither the claim nor its lost count


def test_live_processes_lists_app_and_heartbeat_and_a_graceful_leave_counts_nothing_lost():
    store = RedisStore(fake_redis(), "t")
    reg = store.liveness
    key = _instance_awaiting(store, "g")
    reg.beat("p1", {"app": "orders", "host": "h", "pid": "7", "workflows": {"wf": [""]}}, 1000)
    reg.beat("p2", {"app": "default"}, 100)
    live = reg.live_processes(1005, 10)
    assert [(p.process_id, p.app_id, p.heartbeat, p.workflows) for p in live] == [("p1", "orders", 1000, {"wf": [""]})]
    reg.take_attempts("p1", [("g", key)], 1001, alive_since=995, lost_limit=1)
    assert reg.processes()[0].work == [member("g", key)]
    assert reg.deregister("p1") == [(member("g", key), 0)]
    assert [p.process_id for p in reg.processes()] == ["p2"]


def test_a_process_marked_dead_is_reaped_with_its_claims_although_its_shard_copies_are_fresh():
    # mark_dead (a pool whose shutdown grace is over) dates back only the global heartbeat; each
    # shard's copy still holds the last beat. The reap must still take the claims, not orphan them.
    store = RedisStore(fake_redis(), "t")
    reg = store.liveness
    key = _instance_awaiting(store, "g")
    reg.beat("a", {"app": "app"}, 100)
    assert reg.take_attempts("a", [("g", key)], 100, alive_since=90, lost_limit=1) == [(TakeCode.TAKEN, "")]
    reg.mark_dead("a")
    taken = reg.reap("a", dead_before=50)  # the sweep's cutoff (now - expiry) predates its last beat
    assert taken is not None and taken[1] == [(member("g", key), 1)]
    assert not store.redis.hexists(store.keys.shard_of("g").claims, member("g", key))
