"""tenacity's own strategy objects in RetryPolicy: deterministic ones adapted, the rest refused."""

import threading
from datetime import timedelta

import pytest
import tenacity

from orchestrator.core.retry import RetryPolicy, RetryState, wait_fixed

SEC = timedelta(seconds=1)


def policy(**kwargs):
    return RetryPolicy(first_retry_interval=SEC, max_number_of_attempts=10, **kwargs)


def delays(p, error_type="IOError", elapsed=timedelta(0), attempts=range(1, 6)):
    out = []
    for n in attempts:
        d = p.next_delay(n, error_type, elapsed, seed=7)
        out.append(None if d is None else d.total_seconds())
    return out


def test_tenacity_exponential_wait_matches_tenacity_itself():
    strategy = tenacity.wait_exponential(multiplier=0.5, max=5)
    p = policy(wait=strategy)
    assert delays(p) == [0.5, 1.0, 2.0, 4.0, 5.0]
    # The same numbers tenacity computes for a live RetryCallState.
    live = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    for n, expected in zip(range(1, 6), delays(p)):
        live.attempt_number = n
        assert strategy(live) == expected


def test_tenacity_chain_combine_and_incrementing_waits():
    chained = tenacity.wait_chain(tenacity.wait_fixed(1), tenacity.wait_fixed(3))
    assert delays(policy(wait=chained), attempts=[1, 2, 3]) == [1.0, 3.0, 3.0]
    combined = tenacity.wait_fixed(1) + tenacity.wait_incrementing(start=0, increment=2)
    assert delays(policy(wait=combined), attempts=[1, 2, 3]) == [1.0, 3.0, 5.0]
    # Adapted tenacity waits compose with this package's strategies.
    mixed = policy(wait=tenacity.wait_fixed(1))
    assert (mixed.wait + wait_fixed(2))(RetryState(1, "E", timedelta(0), 0)) == 3.0


def test_tenacity_stops_use_attempt_and_elapsed_time():
    p = policy(stop=tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(60))
    assert delays(p, attempts=[1, 2, 3]) == [1.0, 1.0, None]
    assert delays(p, elapsed=timedelta(seconds=61), attempts=[1]) == [None]
    assert delays(policy(stop=tenacity.stop_never), attempts=[9]) == [1.0]


def test_tenacity_retry_predicates_translate_to_type_names():
    p = policy(retry=tenacity.retry_if_exception_type((ConnectionError, TimeoutError)))
    assert delays(p, "ConnectionError", attempts=[1]) == [1.0]
    assert delays(p, "ValueError", attempts=[1]) == [None]
    anything = policy(retry=tenacity.retry_if_exception_type())  # tenacity's default: Exception
    assert delays(anything, "mymod.Whatever", attempts=[1]) == [1.0]
    p = policy(retry=tenacity.retry_if_not_exception_type(KeyError) & tenacity.retry_always)
    assert delays(p, "KeyError", attempts=[1]) == [None] and delays(p, "IOError", attempts=[1]) == [1.0]
    assert delays(policy(retry=tenacity.retry_never), attempts=[1]) == [None]


@pytest.mark.parametrize("wait", [
    tenacity.wait_random(0, 1),
    tenacity.wait_random_exponential(multiplier=1, max=10),
    tenacity.wait_exponential_jitter(initial=1, max=10),
    tenacity.wait_fixed(1) + tenacity.wait_random(0, 1),
])
def test_jittered_tenacity_waits_are_refused_with_the_replay_safe_alternative(wait):
    with pytest.raises(TypeError, match="global random module.*seeded from history") as err:
        policy(wait=wait)
    assert "orchestrator.core.retry." in str(err.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"stop": tenacity.stop_before_delay(5)}, "stop_before_delay"),
    ({"stop": tenacity.stop_when_event_set(threading.Event())}, "stop_when_event_set"),
    ({"retry": tenacity.retry_if_exception_message(message="x")}, "recorded error type name"),
    ({"retry": tenacity.retry_if_result(lambda r: r is None)}, "retry_if_result"),
    ({"wait": tenacity.wait_exception(lambda e: 1)}, "wait_exception"),
    ({"wait": tenacity.wait_chain(tenacity.wait_fixed(1), wait_fixed(2))}, "non-tenacity part"),
])
def test_unreplayable_tenacity_strategies_are_refused_naming_them(kwargs, match):
    with pytest.raises(TypeError, match=match):
        policy(**kwargs)


def test_subclasses_of_tenacity_strategies_are_not_trusted():
    class my_wait(tenacity.wait_fixed):
        pass

    with pytest.raises(TypeError, match="my_wait"):
        policy(wait=my_wait(1))
