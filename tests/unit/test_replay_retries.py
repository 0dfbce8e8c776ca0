"""Replay of retries with activity timeouts and retry-after hints: history in, decisions out."""

import dataclasses
from datetime import timedelta

import pytest

from orchestrator.codec import pack_events, unpack_events
from orchestrator.core.errors import FailureDetails, NonDeterminismError, TaskFailedError
from orchestrator.core.history import (
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from orchestrator.core.replay import replay
from orchestrator.core.retry import RetryPolicy
from orchestrator.core.tasks import when_all

from .test_replay import T0, start

POLICY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)


def timed(ctx, _):
    return (yield ctx.call_activity("slow", input=7, retry_policy=POLICY, timeout=timedelta(seconds=5)))


def step(wf, past, *events, ts):
    """Replay one step at ``ts``; returns (result, past extended by what the step committed)."""
    new = [StepStarted(ts=ts), *events]
    result = replay(wf, "i", past, new)
    return result, past + new + result.actions


def test_timeout_adds_a_guard_timer_raced_against_the_attempt():
    first = replay(timed, "i", [], start())
    assert first.actions == [
        TaskScheduled(ts=T0, seq=1, name="slow", input=7),
        TimerCreated(ts=T0, seq=2, fire_at=T0 + 5000, purpose="timeout"),
    ]
    assert first.wait.mode == "any" and first.wait.tokens == ("t:1", "t:2")
    assert first.abandoned == []


def test_guard_firing_first_fails_the_attempt_retries_and_abandons_it():
    past = start() + replay(timed, "i", [], start()).actions
    result, past = step(timed, past, TimerFired(ts=T0 + 5000, seq=2), ts=T0 + 5001)
    assert result.actions == [TimerCreated(ts=T0 + 5001, seq=3, fire_at=T0 + 6001, purpose="retry")]
    assert result.abandoned == [1]  # the engine drops task key 1: attempt 1's late result is discarded
    assert result.wait.tokens == ("t:3",)
    result, past = step(timed, past, TimerFired(ts=T0 + 6001, seq=3), ts=T0 + 6002)
    assert result.actions == [
        TaskScheduled(ts=T0 + 6002, seq=4, name="slow", input=7, attempt=2),
        TimerCreated(ts=T0 + 6002, seq=5, fire_at=T0 + 11002, purpose="timeout"),
    ]
    assert result.abandoned == []  # recorded abandonments are not reported again
    done, _ = step(timed, past, TaskCompleted(ts=T0 + 7000, seq=4, result="ok"), ts=T0 + 7001)
    assert done.completion.result == "ok"
    assert done.abandoned == [5]  # attempt 2 won its race: its guard timer is disarmed


def test_late_result_of_a_timed_out_attempt_is_ignored():
    past = start() + replay(timed, "i", [], start()).actions
    _, past = step(timed, past, TimerFired(ts=T0 + 5000, seq=2), ts=T0 + 5001)
    # The late result slipped into the inbox before the store dropped it: replay must ignore it.
    result, past = step(timed, past, TaskCompleted(ts=T0 + 5500, seq=1, result="late"), ts=T0 + 5501)
    assert result.completion is None and result.actions == [] and result.abandoned == []
    result, past = step(timed, past, TimerFired(ts=T0 + 6001, seq=3), ts=T0 + 6002)
    done, _ = step(timed, past, TaskCompleted(ts=T0 + 6100, seq=4, result="fresh"), ts=T0 + 6101)
    assert done.completion.result == "fresh"


def test_result_and_guard_in_one_batch_take_effect_in_arrival_order():
    past = start() + replay(timed, "i", [], start()).actions
    won = replay(timed, "i", past, [StepStarted(ts=T0 + 5001), TaskCompleted(ts=T0 + 4999, seq=1, result="in time"),
                                    TimerFired(ts=T0 + 5000, seq=2)])
    assert won.completion.result == "in time" and won.abandoned == [2]
    lost = replay(timed, "i", past, [StepStarted(ts=T0 + 5001), TimerFired(ts=T0 + 5000, seq=2),
                                     TaskCompleted(ts=T0 + 5000, seq=1, result="too late")])
    assert lost.completion is None and lost.abandoned == [1]
    assert lost.actions[0].purpose == "retry"


def test_failure_before_the_guard_disarms_it_and_retries():
    past = start() + replay(timed, "i", [], start()).actions
    boom = FailureDetails(message="x", error_type="IOError")
    result, _ = step(timed, past, TaskFailed(ts=T0 + 10, seq=1, failure=boom), ts=T0 + 11)
    assert result.abandoned == [2]
    assert result.actions == [TimerCreated(ts=T0 + 11, seq=3, fire_at=T0 + 1011, purpose="retry")]


def test_timeout_without_a_policy_raises_activity_timeout_error_in_the_workflow():
    def wf(ctx, _):
        try:
            yield ctx.call_activity("slow", timeout=timedelta(milliseconds=1500))
        except TaskFailedError as err:
            return [err.details.error_type, err.details.message]

    past = start() + replay(wf, "i", [], start()).actions
    result, _ = step(wf, past, TimerFired(ts=T0 + 1500, seq=2), ts=T0 + 1501)
    assert result.completion.result == [
        "ActivityTimeoutError", "activity 'slow' (attempt 1) did not finish within 1.5 s"]


def test_exhausted_timeouts_fail_the_workflow_with_activity_timeout_error():
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=2)

    def wf(ctx, _):
        yield ctx.call_activity("slow", retry_policy=policy, timeout=timedelta(seconds=1))

    past = start() + replay(wf, "i", [], start()).actions
    _, past = step(wf, past, TimerFired(ts=T0 + 1000, seq=2), ts=T0 + 1000)
    _, past = step(wf, past, TimerFired(ts=T0 + 2000, seq=3), ts=T0 + 2000)
    result, _ = step(wf, past, TimerFired(ts=T0 + 3000, seq=5), ts=T0 + 3000)
    assert result.completion.status == "FAILED"
    assert result.completion.failure.error_type == "ActivityTimeoutError"
    assert "(attempt 2)" in result.completion.failure.message


def test_fan_out_with_timeouts_waits_in_any_mode_on_every_token():
    def fan(ctx, _):
        return (yield when_all([ctx.call_activity("a", input=i, timeout=timedelta(seconds=1)) for i in range(2)]))

    first = replay(fan, "i", [], start())
    assert [a.kind for a in first.actions] == ["TaskScheduled", "TimerCreated", "TaskScheduled", "TimerCreated"]
    # Only one of each call's two tokens will come, so the store cannot count down an "all" wait.
    assert first.wait.mode == "any" and first.wait.tokens == ("t:1", "t:2", "t:3", "t:4")
    past = start() + first.actions
    half, past = step(fan, past, TaskCompleted(ts=T0 + 5, seq=1, result="a"), ts=T0 + 6)
    assert half.completion is None and half.wait.tokens == ("t:3", "t:4") and half.abandoned == [2]
    done, _ = step(fan, past, TaskCompleted(ts=T0 + 7, seq=3, result="b"), ts=T0 + 8)
    assert done.completion.result == ["a", "b"] and done.abandoned == [4]


def test_removing_a_timeout_from_running_code_is_nondeterministic():
    past = start() + replay(timed, "i", [], start()).actions

    def changed(ctx, _):
        return (yield ctx.call_activity("slow", input=7, retry_policy=POLICY))

    with pytest.raises(NonDeterminismError, match="activity timeout timer"):
        replay(changed, "i", past, [StepStarted(ts=T0 + 1), TaskCompleted(ts=T0, seq=1, result=1)])


@pytest.mark.parametrize("timeout, error", [(5, TypeError), (timedelta(0), ValueError), (timedelta(seconds=-1), ValueError)])
def test_invalid_timeouts_are_refused_at_the_call(timeout, error):
    def wf(ctx, _):
        yield ctx.call_activity("slow", timeout=timeout)

    result = replay(wf, "i", [], start())
    assert result.completion.status == "FAILED"
    assert result.completion.failure.error_type == error.__name__
    assert "timeout of activity 'slow'" in result.completion.failure.message


def test_retry_after_hint_stretches_the_backoff_but_never_shortens_it():
    def wf(ctx, _):
        return (yield ctx.call_activity("dep", retry_policy=POLICY))

    past = start() + [TaskScheduled(ts=T0, seq=1, name="dep")]
    refused = FailureDetails(message="open", error_type="CircuitOpenError", retry_after_ms=4000)
    result = replay(wf, "i", past, [StepStarted(ts=T0 + 10), TaskFailed(ts=T0, seq=1, failure=refused)])
    assert result.actions == [TimerCreated(ts=T0 + 10, seq=2, fire_at=T0 + 4010, purpose="retry")]
    short = FailureDetails(message="open", error_type="CircuitOpenError", retry_after_ms=200)
    result = replay(wf, "i", past, [StepStarted(ts=T0 + 10), TaskFailed(ts=T0, seq=1, failure=short)])
    assert result.actions[0].fire_at == T0 + 1010  # the policy's 1 s wins


def test_retry_after_hint_without_a_policy_fails_fast():
    def wf(ctx, _):
        yield ctx.call_activity("dep")

    past = start() + [TaskScheduled(ts=T0, seq=1, name="dep")]
    refused = FailureDetails(message="open", error_type="CircuitOpenError", retry_after_ms=4000)
    result = replay(wf, "i", past, [StepStarted(ts=T0 + 10), TaskFailed(ts=T0, seq=1, failure=refused)])
    # the root cause's failure, with Dapr's chained TaskFailedError message
    assert result.completion.failure == dataclasses.replace(refused, message="Activity task #1 ('dep') failed: open")


def test_retry_after_survives_the_history_encoding():
    failure = FailureDetails("open", "CircuitOpenError", None, retry_after_ms=1234)
    events = [TaskFailed(ts=T0, seq=1, failure=failure), TaskFailed(ts=T0, seq=2, failure=FailureDetails("m", "E"))]
    assert unpack_events(pack_events(events)) == events
    assert FailureDetails.from_list(["E", "m", None]).retry_after_ms is None
