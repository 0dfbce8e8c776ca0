"""Issue 19, class 5: Redis trouble is ridden out (DESIGN §8). A pool lives through Redis at maxmemory
refusing writes (OOM) and through Redis demoted to a read-only replica for a few seconds; instances
in flight and started meanwhile complete after Redis recovers, without a new pool. At start, a pool
warns of a Redis that may evict keys or runs without AOF.

Real redis-server processes (a second private one to fail over to) and a real pool with the
engine's default settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from orchestrator import Settings, WorkflowClient, WorkflowStatus
from orchestrator.store import monitoring
from orchestrator.store.redis_store import RedisStore
from tests.support.defaults import default_pool, default_stack
from tests.support.redis_proc import EmbeddedRedis
from tests.support.waiting import finish, wait_until

APP = "tests.apps.hardening_app"
TROUBLE_SECONDS = 5


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimpleNamespace]:
    with default_stack(tmp_path, concurrency=2) as running:
        yield running


def gated(stack: SimpleNamespace, gate: str) -> str:
    iid = stack.client.schedule_new_workflow("hard_gated", input={"gate": gate, "value": gate}, instance_id=gate)
    wait_until(lambda: stack.redis.get(f"hard:started:{gate}"), what=f"{gate}'s activity to start")
    return iid


def survived(stack: SimpleNamespace, *finished: tuple[str, object]) -> None:
    """Every instance completes, a new one too, on the pool that was there all along."""
    for iid, output in finished:
        assert finish(stack.client, iid, timeout=90).output == output
    fresh = stack.client.schedule_new_workflow("hard_ok", input="after the trouble")
    assert finish(stack.client, fresh).output == "after the trouble"
    log = stack.pool.log_path.read_text()
    assert stack.pool.proc.poll() is None and "Unrecoverable error" not in log, stack.pool.log_tail()


def test_a_pool_rides_out_redis_refusing_writes_at_maxmemory(stack):
    c, r = stack.client, stack.redis
    before = c.schedule_new_workflow("hard_ok", input="before")
    assert finish(c, before).output == "before"
    in_flight = gated(stack, "oom-in-flight")
    r.config_set("maxmemory", 1)  # noeviction (the embedded Redis's policy): every write that grows is refused
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            r.set("probe", 1)
        # A start meanwhile: refused with Redis's OOM error, or (scripts may run past maxmemory) taken.
        try:
            during = [(c.schedule_new_workflow("hard_ok", input="during"), "during")]
        except redis.exceptions.OutOfMemoryError:
            during = []
        time.sleep(TROUBLE_SECONDS)  # the pool's consumer, sweeper and poller meet OOM refusals meanwhile
        assert stack.pool.proc.poll() is None, stack.pool.log_tail()
    finally:
        r.config_set("maxmemory", 0)
    r.set("hard:open:oom-in-flight", 1)  # (opening the gate is a write too)
    survived(stack, (in_flight, "oom-in-flight"), *during)


def test_a_pool_rides_out_a_failover_that_makes_its_redis_a_read_only_replica(stack):
    c, r = stack.client, stack.redis
    in_flight = gated(stack, "ro-in-flight")
    other = EmbeddedRedis(stack.tmp / "other").start()
    try:
        o = redis.Redis.from_url(other.url)
        o.replicaof("127.0.0.1", stack.server.port)
        wait_until(lambda: o.info("replication").get("master_link_status") == "up", what="the replica to sync")
        # Fail over without losing a write: pause writers, let the replica catch up, promote it, demote ours.
        r.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
        offset = r.info("replication")["master_repl_offset"]
        wait_until(lambda: o.info("replication").get("slave_repl_offset", -1) >= offset, what="the replica to catch up")
        o.replicaof("NO", "ONE")
        r.replicaof("127.0.0.1", other.port)
        r.execute_command("CLIENT", "UNPAUSE")
        wait_until(lambda: r.info("replication").get("master_link_status") == "up", what="the demotion")
        with pytest.raises(redis.exceptions.ReadOnlyError):
            r.set("probe", 1)
        o.set("hard:open:ro-in-flight", 1)  # written on the new primary: the activity finishes while ours is read-only
        started_during = None
        with pytest.raises(redis.exceptions.ReadOnlyError, match="read only replica"):
            started_during = c.schedule_new_workflow("hard_ok", input="refused")
        time.sleep(TROUBLE_SECONDS)
        assert stack.pool.proc.poll() is None, stack.pool.log_tail()
        assert started_during is None
        r.replicaof("NO", "ONE")  # and back: ours is the primary again (holding the new primary's data)
        wait_until(lambda: r.info("replication")["role"] == "master", what="the promotion back")
    finally:
        other.stop()
    survived(stack, (in_flight, "ro-in-flight"))
    assert c.get_workflow_state(in_flight).runtime_status == WorkflowStatus.COMPLETED


def test_a_pool_warns_at_start_of_a_redis_that_may_evict_or_runs_without_aof(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False).start()
    try:
        redis.Redis.from_url(server.url).config_set("maxmemory-policy", "allkeys-lru")
        assert len(monitoring.durability_risks(RedisStore.from_url(server.url))) == 2
        pool = default_pool(APP, server.url, tmp_path / "pool.log", concurrency=1)
        try:
            wait_until(lambda: "runs without AOF" in pool.log_path.read_text(), what="the AOF warning")
            log = pool.log_path.read_text()
            assert "has maxmemory-policy allkeys-lru: at maxmemory it may evict keys" in log
            assert "Set maxmemory-policy noeviction" in log and "Set appendonly yes" in log
            client = WorkflowClient(settings=Settings(redis_url=server.url))
            assert finish(client, client.schedule_new_workflow("hard_ok", input=1)).output == 1
        finally:
            pool.kill()
    finally:
        server.stop()
