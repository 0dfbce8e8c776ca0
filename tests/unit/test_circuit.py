"""The circuit breaker's state machine against a real (private) redis-server; time is passed in."""

import pytest

from orchestrator.store.redis_store import RedisStore
from orchestrator.worker.circuit import CircuitBreaker

NOW = 1_700_000_000_000


def breaker(redis_client, threshold=3, cooldown=10.0, app="shop"):
    return CircuitBreaker(RedisStore(redis_client, "orch"), app, threshold, cooldown)


def test_opens_after_threshold_consecutive_failures(redis_client):
    cb = breaker(redis_client)
    for _ in range(2):
        cb.record("charge", ok=False, now_ms=NOW)
    assert cb.blocked_for("charge", NOW) == 0
    cb.record("charge", ok=False, now_ms=NOW)
    assert cb.blocked_for("charge", NOW) == 10_000
    assert cb.blocked_for("charge", NOW + 9_000) == 1_000
    assert cb.state("charge") == {"failures": 2, "open_until": NOW + 10_000, "opened": 1}
    assert redis_client.exists("orch:circuit:shop:charge")


def test_a_success_resets_the_count(redis_client):
    cb = breaker(redis_client)
    cb.record("charge", ok=False, now_ms=NOW)
    cb.record("charge", ok=False, now_ms=NOW)
    cb.record("charge", ok=True, now_ms=NOW)
    cb.record("charge", ok=False, now_ms=NOW)
    assert cb.blocked_for("charge", NOW) == 0
    assert cb.state("charge")["failures"] == 1


def test_half_open_after_cool_down_one_failure_reopens_one_success_closes(redis_client):
    cb = breaker(redis_client)
    for _ in range(3):
        cb.record("charge", ok=False, now_ms=NOW)
    later = NOW + 10_000
    assert cb.blocked_for("charge", later) == 0  # cool-down over: calls run again
    cb.record("charge", ok=False, now_ms=later)
    assert cb.blocked_for("charge", later) == 10_000 and cb.state("charge")["opened"] == 2
    cb.record("charge", ok=True, now_ms=later + 10_000)
    assert cb.state("charge") == {"failures": 0, "open_until": 0, "opened": 0}


def test_breakers_are_per_activity_and_per_app(redis_client):
    cb, other_app = breaker(redis_client, threshold=1), breaker(redis_client, threshold=1, app="billing")
    cb.record("charge", ok=False, now_ms=NOW)
    assert cb.blocked_for("charge", NOW) > 0
    assert cb.blocked_for("refund", NOW) == 0 and other_app.blocked_for("charge", NOW) == 0


def test_refusal_carries_the_rest_of_the_cool_down(redis_client):
    cb = breaker(redis_client, threshold=1)
    failure = cb.refusal("charge", 2500)
    assert failure.error_type == "CircuitOpenError" and failure.retry_after_ms == 2500
    assert "'charge'" in failure.message and "2.5 s" in failure.message


def test_disabled_breaker_never_blocks_or_writes(redis_client):
    cb = breaker(redis_client, threshold=0)
    for _ in range(5):
        cb.record("charge", ok=False, now_ms=NOW)
    assert cb.blocked_for("charge", NOW) == 0 and redis_client.keys("orch:circuit:*") == []


@pytest.mark.parametrize("threshold, cooldown, field", [(-1, 1.0, "threshold"), (True, 1.0, "threshold"),
                                                        (2, 0, "cooldown"), (2, "5", "cooldown")])
def test_bad_settings_are_refused_naming_them(redis_client, threshold, cooldown, field):
    with pytest.raises(ValueError, match=f"circuit_(failure_)?{field}"):
        breaker(redis_client, threshold=threshold, cooldown=cooldown)
