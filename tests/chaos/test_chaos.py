"""CI's chaos scenario: >= 200 mixed workflows, a worker pool SIGKILLed every 3 s, one Redis crash.

With ORCH_TEST_STORE=cluster (the CI's cluster job) the store is a private 3-master Redis Cluster, the
broker a separate Redis, and the Redis crash is a cluster master's (tests/chaos/stack.py says why).

The long scenario (1,000 workflows, a kill every 2 s, two Redis crashes, a 30 s outage) runs on
demand: ``python -m tests.chaos.run --workflows 1000 --kill-every 2 --redis-restarts 2 --outage 30``.
"""

from __future__ import annotations

from pathlib import Path

from tests.chaos.run import Scenario, run_scenario
from tests.conftest import TEST_STORE


def test_short_chaos_scenario_loses_nothing_and_commits_nothing_twice(tmp_path: Path) -> None:
    scenario = Scenario(workflows=200, kill_every=3.0, redis_restarts=1, outage=0.0, store=TEST_STORE)
    report = run_scenario(scenario, tmp_path)
    print(report.summary())
    assert report.verdict.problems == []
    v = report.verdict
    assert (v.completed, v.lost, v.double_commits) == (200, 0, 0)
    assert report.kills >= 5 and report.redis_restarts == 1
    # Every activity attempt in history ran at least once; re-executions are counted, not hidden.
    assert v.executions == v.activity_attempts + v.duplicate_executions
    # Default settings (visibility_timeout 3600 s): a killed pool's work moves again within seconds.
    # This scenario's activities are short, so a kill often finds nothing claimed and some runs have
    # no sample at all; the kill-mid-chain bound is proved deterministically in tests/integration/
    # test_liveness.py, and here every sample there is must keep it.
    assert all(seconds < 30 for seconds in report.resume_s), report.resume_s


def test_a_channel_used_after_celery_collected_its_connection_keeps_working(redis_server, broker_client):
    """Found by this suite: after a Redis restart, Celery detaches the broker transport from its
    connection while the old channel is still used, to acknowledge a task that finished meanwhile and
    to put unacknowledged messages back on close. Kombu's Redis transport then raises AttributeError
    (no connection details left) and Celery exits the whole pool."""
    from kombu import Connection

    from orchestrator.worker.broker import Transport

    broker_url = getattr(redis_server, "broker_url", redis_server.url)  # a cluster run's broker is apart
    with Connection(broker_url, transport=Transport) as conn:
        channel = conn.channel()
        channel.queue_declare("chaos-probe")
        for body in ("finished", "not started"):
            channel.basic_publish(channel.prepare_message(body), exchange="", routing_key="chaos-probe")
        finished = channel.basic_get("chaos-probe", no_ack=False)
        assert channel.basic_get("chaos-probe", no_ack=False) is not None  # both received, neither acked
        assert broker_client.hlen("unacked") == 2
        conn.transport.client = None  # what Connection.collect() leaves behind
        channel.basic_ack(finished.delivery_tag)  # kombu's own Channel raises AttributeError here...
        channel.close()  # ...and here
        assert channel.closed
    # The finished one is acknowledged; the other is back on its queue, not lost and not duplicated.
    assert broker_client.hlen("unacked") == 0 and broker_client.llen("chaos-probe") == 1
