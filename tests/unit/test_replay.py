"""The replay core, tested the durabletask way: lists of history events in, decisions out."""

from datetime import timedelta

import pytest

from orchestrator.codec import pack_events, unpack_events
from orchestrator.core.errors import FailureDetails, NonDeterminismError, TaskFailedError
from orchestrator.core.history import (
    ChildCompleted,
    ChildScheduled,
    ContinuedAsNew,
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from orchestrator.core.replay import replay
from orchestrator.core.tasks import when_all, when_any

T0 = 1_700_000_000_000


def start(name="wf", input=None, ts=T0):
    return [StepStarted(ts=ts), ExecutionStarted(ts=ts, name=name, input=input)]


def chain(ctx, n):
    total = 0
    for i in range(n):
        total = yield ctx.call_activity("add", input=[total, i])
    return total


def test_first_step_schedules_first_activity():
    result = replay(chain, "i1", [], start(input=3))
    assert result.actions == [TaskScheduled(ts=T0, seq=1, name="add", input=[0, 0])]
    assert result.completion is None
    assert result.wait.tokens == ("t:1",)


def test_replay_feeds_recorded_results_and_completes():
    past = start(input=2) + [TaskScheduled(ts=T0, seq=1, name="add", input=[0, 0])]
    past += [StepStarted(ts=T0 + 5), TaskCompleted(ts=T0 + 4, seq=1, result=10),
             TaskScheduled(ts=T0 + 5, seq=2, name="add", input=[10, 1])]
    result = replay(chain, "i1", past, [StepStarted(ts=T0 + 9), TaskCompleted(ts=T0 + 8, seq=2, result=11)])
    assert result.actions == []
    assert result.completion == ExecutionCompleted(ts=T0 + 9, status="COMPLETED", result=11)


def test_changed_code_raises_nondeterminism_naming_the_step():
    past = start(input=2) + [TaskScheduled(ts=T0, seq=1, name="charge", input=None)]

    def changed(ctx, _):
        yield ctx.call_activity("refund")

    with pytest.raises(NonDeterminismError) as err:
        replay(changed, "i1", past, [StepStarted(ts=T0 + 1), TaskCompleted(ts=T0, seq=1, result=1)])
    message = str(err.value)
    assert "'charge'" in message and "'refund'" in message and "#3" in message


def test_extra_call_in_a_recorded_step_is_nondeterministic():
    past = start() + [TaskScheduled(ts=T0, seq=1, name="a")]

    def changed(ctx, _):
        yield when_all([ctx.call_activity("a"), ctx.call_activity("b")])

    with pytest.raises(NonDeterminismError, match="'b'"):
        replay(changed, "i1", past, [StepStarted(ts=T0 + 1)])


def test_fan_out_waits_for_all_and_collects_in_order():
    def fan(ctx, n):
        results = yield when_all([ctx.call_activity("sq", input=i) for i in range(n)])
        return sum(results)

    first = replay(fan, "i", [], start(input=3))
    assert [a.seq for a in first.actions] == [1, 2, 3]
    assert first.wait.mode == "all" and first.wait.tokens == ("t:1", "t:2", "t:3")
    past = start(input=3) + first.actions
    done = replay(fan, "i", past, [StepStarted(ts=T0 + 1)] + [
        TaskCompleted(ts=T0, seq=s, result=s * s) for s in (3, 1, 2)
    ])
    assert done.completion.result == 14


def test_activity_failure_surfaces_as_task_failed_error():
    def wf(ctx, _):
        try:
            yield ctx.call_activity("boom")
        except TaskFailedError as exc:
            return {"type": exc.details.error_type, "message": exc.details.message}

    past = start() + [TaskScheduled(ts=T0, seq=1, name="boom")]
    failure = FailureDetails(message="bad", error_type="ValueError", stack_trace="...")
    result = replay(wf, "i", past, [StepStarted(ts=T0 + 1), TaskFailed(ts=T0, seq=1, failure=failure)])
    assert result.completion.result == {"type": "ValueError", "message": "bad"}


def test_unhandled_failure_fails_workflow_with_original_error():
    def wf(ctx, _):
        yield ctx.call_activity("boom")

    past = start() + [TaskScheduled(ts=T0, seq=1, name="boom")]
    failure = FailureDetails(message="bad", error_type="ValueError", stack_trace="trace")
    result = replay(wf, "i", past, [StepStarted(ts=T0 + 1), TaskFailed(ts=T0, seq=1, failure=failure)])
    assert result.completion.status == "FAILED"
    assert result.completion.failure.error_type == "ValueError"


def approval(ctx, order):
    if order["amount"] < 1000:
        yield ctx.call_activity("auto_approve", input=order)
        return "auto"
    event = ctx.wait_for_external_event("human_approval")
    timeout = ctx.create_timer(timedelta(days=7))
    winner = yield when_any([event, timeout])
    if winner == timeout:
        return "timeout"
    return event.get_result()


def test_when_any_event_beats_timer():
    first = replay(approval, "i", [], start(input={"amount": 5000}))
    assert first.actions == [TimerCreated(ts=T0, seq=1, fire_at=T0 + 7 * 86400_000)]
    assert set(first.wait.tokens) == {"e:human_approval", "t:1"} and first.wait.mode == "any"
    past = start(input={"amount": 5000}) + first.actions
    result = replay(approval, "i", past, [StepStarted(ts=T0 + 1), EventRaised(ts=T0, name="human_approval", data="ok")])
    assert result.completion.result == "ok"


def test_when_any_timer_wins_and_late_event_is_harmless():
    past = start(input={"amount": 5000}) + [TimerCreated(ts=T0, seq=1, fire_at=T0 + 7 * 86400_000)]
    result = replay(approval, "i", past, [StepStarted(ts=T0 + 1), TimerFired(ts=T0, seq=1),
                                         EventRaised(ts=T0, name="human_approval", data="late")])
    assert result.completion.result == "timeout"


def test_event_raised_before_wait_is_buffered_and_taken_in_order():
    def two(ctx, _):
        yield ctx.call_activity("prep")
        a = yield ctx.wait_for_external_event("go")
        b = yield ctx.wait_for_external_event("go")
        return [a, b]

    past = start() + [TaskScheduled(ts=T0, seq=1, name="prep")]
    new = [StepStarted(ts=T0 + 1), EventRaised(ts=T0, name="go", data=1), EventRaised(ts=T0, name="go", data=2),
           TaskCompleted(ts=T0, seq=1, result=None)]
    assert replay(two, "i", past, new).completion.result == [1, 2]


def test_lost_event_wait_lets_go_so_a_later_wait_gets_the_event():
    def wf(ctx, _):
        evt = ctx.wait_for_external_event("x")
        winner = yield when_any([evt, ctx.create_timer(timedelta(seconds=1))])
        assert winner is not evt
        value = yield ctx.wait_for_external_event("x")
        return value

    past = start() + [TimerCreated(ts=T0, seq=1, fire_at=T0 + 1000), StepStarted(ts=T0 + 1000), TimerFired(ts=T0, seq=1)]
    result = replay(wf, "i", past, [StepStarted(ts=T0 + 2000), EventRaised(ts=T0, name="x", data="v")])
    assert result.completion.result == "v"


def test_current_utc_datetime_comes_from_history():
    seen = []

    def wf(ctx, _):
        seen.append(ctx.current_utc_datetime)
        yield ctx.create_timer(timedelta(seconds=5))
        seen.append(ctx.current_utc_datetime)

    past = start() + [TimerCreated(ts=T0, seq=1, fire_at=T0 + 5000)]
    replay(wf, "i", past, [StepStarted(ts=T0 + 5123), TimerFired(ts=T0 + 5100, seq=1)])
    assert seen[0].year == 2023 and seen[0].tzinfo is None
    assert (seen[1] - seen[0]).total_seconds() == pytest.approx(5.123)


def test_is_replaying_is_true_only_for_recorded_steps():
    flags = []

    def wf(ctx, _):
        flags.append(ctx.is_replaying)
        yield ctx.call_activity("a")
        flags.append(ctx.is_replaying)

    past = start() + [TaskScheduled(ts=T0, seq=1, name="a")]
    replay(wf, "i", past, [StepStarted(ts=T0 + 1), TaskCompleted(ts=T0, seq=1, result=1)])
    assert flags == [True, False]


def test_child_workflow_gets_deterministic_id_and_result():
    def parent(ctx, _):
        return (yield ctx.call_child_workflow("kid", input=1))

    first = replay(parent, "p", [], start())
    assert first.actions == [ChildScheduled(ts=T0, seq=1, name="kid", instance_id="p:1", input=1)]
    done = replay(parent, "p", start() + first.actions, [StepStarted(ts=T0 + 1), ChildCompleted(ts=T0, seq=1, result=7)])
    assert done.completion.result == 7


def test_continue_as_new_carries_input_and_buffered_events():
    def monitor(ctx, n):
        yield ctx.create_timer(timedelta(seconds=1))
        ctx.continue_as_new(n + 1, save_events=True)

    past = start(input=1) + [TimerCreated(ts=T0, seq=1, fire_at=T0 + 1000)]
    result = replay(monitor, "m", past, [StepStarted(ts=T0 + 1000), EventRaised(ts=T0, name="e", data=5), TimerFired(ts=T0, seq=1)])
    assert isinstance(result.completion, ContinuedAsNew) and result.completion.input == 2
    assert [e.data for e in result.carryover] == [5]


def test_yielding_a_non_task_fails_with_a_clear_error():
    def wf(ctx, _):
        yield 42

    result = replay(wf, "i", [], start())
    assert result.completion.status == "FAILED"
    assert "yielded 42" in result.completion.failure.message


def test_plain_function_workflow_completes_without_yielding():
    result = replay(lambda ctx, x: x * 2, "i", [], start(input=21))
    assert result.completion.result == 42


def test_non_json_output_fails_the_workflow_naming_the_type():
    result = replay(lambda ctx, x: {1, 2}, "i", [], start())
    assert result.completion.status == "FAILED" and "set" in result.completion.failure.message


class _Policy:
    """A minimal stand-in with the RetryPolicy.next_delay contract: 1 s, 2 s, then give up."""

    def next_delay(self, attempt, error_type, elapsed, seed):
        return timedelta(seconds=attempt) if attempt < 3 else None


def test_retry_schedules_backoff_timer_then_next_attempt():
    def wf(ctx, _):
        return (yield ctx.call_activity("flaky", retry_policy=_Policy()))

    boom = FailureDetails(message="x", error_type="IOError")
    past = start() + [TaskScheduled(ts=T0, seq=1, name="flaky")]
    step = replay(wf, "i", past, [StepStarted(ts=T0 + 10), TaskFailed(ts=T0, seq=1, failure=boom)])
    assert step.actions == [TimerCreated(ts=T0 + 10, seq=2, fire_at=T0 + 1010, purpose="retry")]
    past += [StepStarted(ts=T0 + 10), TaskFailed(ts=T0, seq=1, failure=boom)] + step.actions
    step = replay(wf, "i", past, [StepStarted(ts=T0 + 1010), TimerFired(ts=T0, seq=2)])
    assert step.actions == [TaskScheduled(ts=T0 + 1010, seq=3, name="flaky", attempt=2)]
    past += [StepStarted(ts=T0 + 1010), TimerFired(ts=T0, seq=2)] + step.actions
    done = replay(wf, "i", past, [StepStarted(ts=T0 + 1100), TaskCompleted(ts=T0, seq=3, result="ok")])
    assert done.completion.result == "ok"


def test_history_round_trips_through_msgpack():
    events = start(input={"a": [1, 2]}) + [
        TaskFailed(ts=T0, seq=1, failure=FailureDetails("m", "E", "s")),
        EventRaised(ts=T0, name="n", data=None),
    ]
    assert unpack_events(pack_events(events)) == events
