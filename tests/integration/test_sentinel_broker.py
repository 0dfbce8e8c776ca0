"""The Celery broker behind Sentinel: its master dies mid-run and the pool goes on on the promoted replica.

The store is a separate plain Redis, so only the broker fails over. Starts its own servers whatever
ORCH_TEST_STORE says.
"""

from __future__ import annotations

import json
from pathlib import Path

import redis

from orchestrator import Settings, WorkflowClient, WorkflowStatus
from orchestrator.embedded import EmbeddedRedis
from tests.chaos import app
from tests.chaos.verify import verify
from tests.conftest import Pool
from tests.support.sentinel import BROKER_OPTIONS, Sentinel
from tests.support.waiting import wait_until

CHAINS, LENGTH, NAP_MS, EVENTS = 6, 20, 100, 2


def _executions(store: redis.Redis) -> int:
    return sum(int(n) for n in store.hvals(app.EXEC_KEY))


def test_a_sentinel_failover_of_the_broker_loses_and_repeats_nothing(tmp_path: Path) -> None:
    sentinel = Sentinel(tmp_path / "sentinel")
    store = EmbeddedRedis(tmp_path / "store").start()
    pool = None
    try:
        env = {"ORCH_BROKER_URL": sentinel.broker_url, "ORCH_BROKER_TRANSPORT_OPTIONS": json.dumps(BROKER_OPTIONS)}
        pool = Pool(app.__name__, store.url, "default", 2, tmp_path / "pool.log", env).start()
        pool.wait_ready()
        client = WorkflowClient(settings=Settings(redis_url=store.url, broker_url=sentinel.broker_url,
                                                  broker_transport_options=BROKER_OPTIONS))
        waiting = [client.schedule_new_workflow("chaos_event", input=i, instance_id=f"event-{i}") for i in range(EVENTS)]
        expected = {iid: app.event_data(i)["value"] + i for i, iid in enumerate(waiting)}
        wait_until(lambda: all(client.queries.waiting_for(iid)["events"] == ["go"] for iid in waiting), timeout=30,
                   what="the event workflows to wait")
        for i in range(CHAINS):
            iid = client.schedule_new_workflow("chaos_paced_chain", input={"n": LENGTH, "ms": NAP_MS}, instance_id=f"chain-{i}")
            expected[iid] = sum(range(LENGTH))
        r = redis.Redis.from_url(store.url)
        wait_until(lambda: _executions(r) >= CHAINS * LENGTH // 4, timeout=30, what="the chains to be under way")
        old = sentinel.kill_master_in_sync()  # the replica holds every message the master took
        in_flight = CHAINS * LENGTH - _executions(r)
        assert in_flight > 0  # the failover falls mid-run
        wait_until(lambda: sentinel.master_port() != old, timeout=30, what="the replica to be promoted")
        for i, iid in enumerate(waiting):  # raised once the broker has a master again
            client.raise_workflow_event(iid, "go", data=app.event_data(i))
        for iid, output in expected.items():
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
            assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, (iid, pool.log_tail())
            assert state.output == output
        assert pool.proc is not None and pool.proc.poll() is None, pool.log_tail()  # the pool rode it out
        verdict = verify(r, expected, set())
        assert verdict.problems == [] and verdict.completed == len(expected)
        # Every activity attempt scheduled once and recorded once, and executed exactly once.
        assert verdict.activity_attempts == CHAINS * LENGTH + EVENTS
        assert verdict.duplicate_executions == 0 and verdict.executions == verdict.activity_attempts
        promoted = redis.Redis(port=sentinel.master_port())
        assert promoted.hlen("unacked") == 0  # no message is left to come back after visibility_timeout
    finally:
        if pool is not None:
            pool.kill()
        store.stop()
        sentinel.stop()


def test_a_sentinel_channel_used_after_celery_collected_its_connection_reaches_the_promoted_master(tmp_path):
    """What the pool meets on a broker failover: Celery collects the connection (detaching the
    transport) while the old channel is still used, to acknowledge a task that finished and, on
    close, to put the unacknowledged messages back, which needs a new pool. Kombu's Sentinel
    channel then raised AttributeError (no Sentinel addresses left): what made Celery exit a pool on a
    plain Redis restart (tests/chaos/test_chaos.py)."""
    from kombu import Connection

    from orchestrator.worker.broker import SentinelTransport

    sentinel = Sentinel(tmp_path / "sentinel")
    try:
        with Connection(sentinel.broker_url, transport=SentinelTransport, transport_options=BROKER_OPTIONS) as conn:
            channel = conn.channel()
            channel.queue_declare("failover-probe")
            for body in ("finished", "not started"):
                channel.basic_publish(channel.prepare_message(body), exchange="", routing_key="failover-probe")
            finished = channel.basic_get("failover-probe", no_ack=False)
            assert channel.basic_get("failover-probe", no_ack=False) is not None  # both received, neither acked
            assert redis.Redis(port=sentinel.master_port()).hlen("unacked") == 2
            old = sentinel.kill_master_in_sync()
            conn.transport.client = None  # what Connection.collect() leaves behind
            wait_until(lambda: sentinel.discovered_port() not in (None, old), timeout=30,
                       what="the replica to be promoted")
            channel.basic_ack(finished.delivery_tag)
            channel.close()  # kombu's own SentinelChannel raised AttributeError here
            assert channel.closed
        # On the promoted master: the finished one acknowledged, the other back on its queue.
        promoted = redis.Redis(port=sentinel.master_port())
        assert promoted.hlen("unacked") == 0 and promoted.llen("failover-probe") == 1
    finally:
        sentinel.stop()
