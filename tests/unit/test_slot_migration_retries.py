"""NamedRedisCluster sends a command that met a slot being migrated again (redis-py gives a TRYAGAIN
only about 0.4 s, then raises ClusterError "TTL exhausted."), and raises a retryable error at last.

No server: redis-py's own ``RedisCluster.execute_command`` is replaced by a script of answers, and
the module's clock by one that sleeps instantly."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import redis.cluster

from orchestrator.store import connection
from orchestrator.store.connection import STORE_RETRYABLE, NamedRedisCluster, RedisUnavailableError

URL = "redis+cluster://:s3cret@127.0.0.1:7000"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The clock connection.py reads: ``slept`` lists the backoff delays, which advance ``now``."""
    fake = SimpleNamespace(now=0.0, slept=[])

    def sleep(seconds: float) -> None:
        fake.slept.append(seconds)
        fake.now += seconds

    monkeypatch.setattr(connection, "time", SimpleNamespace(monotonic=lambda: fake.now, sleep=sleep))
    return fake


def _cluster(monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> tuple[NamedRedisCluster, list[tuple]]:
    """A NamedRedisCluster (never connected) whose underlying calls answer ``answers`` in turn: an
    exception is raised, anything else returned. Also the list of the calls it received."""
    calls: list[tuple] = []
    replies: Iterator[Any] = iter(answers)

    def execute_command(self: redis.cluster.RedisCluster, *args: Any, **options: Any) -> Any:
        calls.append(args)
        answer = next(replies)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(redis.cluster.RedisCluster, "execute_command", execute_command)
    client = NamedRedisCluster.__new__(NamedRedisCluster)
    client.described_url = URL
    return client, calls


def test_a_command_on_a_slot_being_migrated_is_sent_again_after_a_backoff(monkeypatch, clock):
    exhausted = redis.exceptions.ClusterError("TTL exhausted.")
    client, calls = _cluster(monkeypatch, [exhausted, redis.exceptions.TryAgainError("TRYAGAIN"), exhausted, 7])
    assert client.execute_command("EVALSHA", "sha", 2, "k1", "k2") == 7
    assert calls == [("EVALSHA", "sha", 2, "k1", "k2")] * 4
    assert clock.slept == [0.05, 0.1, 0.2]


def test_the_backoff_stops_growing_and_gives_up_with_a_retryable_error_naming_the_url(monkeypatch, clock):
    client, calls = _cluster(monkeypatch, [redis.exceptions.ClusterError("TTL exhausted.")] * 100)
    with pytest.raises(RedisUnavailableError) as err:
        client.execute_command("EVALSHA", "sha", 2, "k1", "k2")
    assert isinstance(err.value, STORE_RETRYABLE)  # the worker's ride-out and Celery's autoretry go on
    assert isinstance(err.value.__cause__, redis.exceptions.TryAgainError)
    assert "a slot is being migrated (TTL exhausted.)" in str(err.value) and "s3cret" not in str(err.value)
    assert max(clock.slept) == 0.5 and sum(clock.slept) <= NamedRedisCluster.slot_migration_patience
    assert len(calls) == len(clock.slept) + 1


def test_a_cluster_that_is_down_or_a_command_error_is_not_retried_here(monkeypatch, clock):
    client, calls = _cluster(monkeypatch, [redis.exceptions.ClusterDownError("CLUSTERDOWN")])
    with pytest.raises(RedisUnavailableError):  # redis-py retried it already; the callers' retries go on
        client.execute_command("GET", "k")
    client, calls = _cluster(monkeypatch, [redis.exceptions.ResponseError("WRONGTYPE")])
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        client.execute_command("GET", "k")
    assert len(calls) == 1 and clock.slept == []
