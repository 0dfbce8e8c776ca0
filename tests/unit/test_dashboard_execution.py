"""The execution model the run page draws, derived from history: sequence, fan-out, retries, races."""

from __future__ import annotations

from orchestrator.core.errors import FailureDetails
from orchestrator.core.history import (
    ChildCompleted,
    ChildScheduled,
    EventRaised,
    ExecutionCompleted,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from orchestrator.dashboard.execution import build_execution

BOOM = FailureDetails("boom", "RuntimeError", "Traceback ...")


def model(events, status="COMPLETED", now=10_000):
    m = build_execution(events, now=now, status=status)
    m["by_id"] = {n["id"]: n for n in m["nodes"]}
    return m


def test_chain_is_a_sequence_of_single_branch_stages():
    events = [
        StepStarted(ts=100), ExecutionStarted(ts=90, name="chain", input=2),
        TaskScheduled(ts=100, seq=1, name="add", input=[0, 0]),
        StepStarted(ts=150), TaskCompleted(ts=140, seq=1, result=0),
        TaskScheduled(ts=150, seq=2, name="add", input=[0, 1]),
        StepStarted(ts=210), TaskCompleted(ts=200, seq=2, result=1),
        ExecutionCompleted(ts=210, status="COMPLETED", result=1),
    ]
    m = model(events)
    assert [s["branches"] for s in m["stages"]] == [["n1"], ["n2"]]
    assert [s["triggers"] for s in m["stages"]] == [["start"], ["n1"]]
    assert m["finish"]["status"] == "COMPLETED" and m["finish"]["triggers"] == ["n2"]
    a1 = m["by_id"]["n1"]
    assert (a1["start"], a1["end"], a1["duration"], a1["status"]) == (100, 140, 40, "completed")
    assert a1["sched_index"] == 2 and a1["done_index"] == 4
    assert not any(s["race"] for s in m["stages"])
    assert m["start"] == 90 and m["end"] == 210


def test_fan_out_then_fan_in_across_several_steps():
    events = [StepStarted(ts=100), ExecutionStarted(ts=100, name="fan")]
    events += [TaskScheduled(ts=100, seq=i, name="work", input=i) for i in (1, 2, 3)]
    events += [StepStarted(ts=200), TaskCompleted(ts=190, seq=2, result=2)]  # a partial fan-in step
    events += [StepStarted(ts=300), TaskCompleted(ts=250, seq=1, result=1), TaskCompleted(ts=280, seq=3, result=3),
               TaskScheduled(ts=300, seq=4, name="sum", input=[1, 2, 3])]
    events += [StepStarted(ts=400), TaskCompleted(ts=390, seq=4, result=6),
               ExecutionCompleted(ts=400, status="COMPLETED", result=6)]
    m = model(events)
    first, second = m["stages"]
    assert first["branches"] == ["n1", "n2", "n3"] and first["triggers"] == ["start"]
    assert second["branches"] == ["n4"] and sorted(second["triggers"]) == ["n1", "n2", "n3"]
    assert not first["race"]
    assert m["counts"]["max_parallel"] == 3 and m["counts"]["activities"] == 4


def test_when_any_marks_the_winner_and_the_branch_left_behind():
    events = [
        StepStarted(ts=100), ExecutionStarted(ts=100, name="race"),
        TaskScheduled(ts=100, seq=1, name="fast"), TaskScheduled(ts=100, seq=2, name="slow"),
        StepStarted(ts=150), TaskCompleted(ts=140, seq=1, result=2),
        ExecutionCompleted(ts=150, status="COMPLETED", result=2),
    ]
    m = model(events)
    stage = m["stages"][0]
    assert stage["race"] is True
    assert m["by_id"]["n1"]["won"] is True and m["by_id"]["n1"]["lost"] is False
    assert m["by_id"]["n2"]["lost"] is True and m["by_id"]["n2"]["won"] is False
    assert m["by_id"]["n2"]["end"] is None and m["by_id"]["n2"]["status"] == "abandoned"
    assert m["finish"]["triggers"] == ["n1"]


def test_retry_chain_is_one_call_attempt_failed_backoff_attempt():
    events = [
        StepStarted(ts=100), ExecutionStarted(ts=100, name="retry"),
        TaskScheduled(ts=100, seq=1, name="flaky"),
        StepStarted(ts=200), TaskFailed(ts=190, seq=1, failure=BOOM),
        TimerCreated(ts=200, seq=2, fire_at=1200, purpose="retry"),
        StepStarted(ts=1210), TimerFired(ts=1205, seq=2),
        TaskScheduled(ts=1210, seq=3, name="flaky", attempt=2),
        StepStarted(ts=1300), TaskCompleted(ts=1290, seq=3, result="ok"),
        TaskScheduled(ts=1300, seq=4, name="next"),
        StepStarted(ts=1400), TaskCompleted(ts=1390, seq=4),
        ExecutionCompleted(ts=1400, status="COMPLETED"),
    ]
    m = model(events)
    assert m["calls"]["n1"] == ["n1", "n2", "n3"]
    assert [s["branches"] for s in m["stages"]] == [["n1"], ["n4"]]
    assert m["stages"][1]["triggers"] == ["n1"]  # the call (its last attempt) triggers the next stage
    first, backoff, second = (m["by_id"][i] for i in ("n1", "n2", "n3"))
    assert first["status"] == "failed" and first["error"] == "RuntimeError: boom"
    assert backoff["kind"] == "retry_timer" and backoff["fire_at"] == 1200 and backoff["status"] == "fired"
    assert second["attempt"] == 2 and second["status"] == "completed" and second["call"] == "n1"
    assert m["counts"]["retries"] == 1


def test_two_parallel_retries_are_matched_to_their_own_failures():
    events = [
        StepStarted(ts=100), ExecutionStarted(ts=100, name="x"),
        TaskScheduled(ts=100, seq=1, name="a"), TaskScheduled(ts=100, seq=2, name="b"),
        StepStarted(ts=200), TaskFailed(ts=150, seq=2, failure=BOOM), TaskFailed(ts=160, seq=1, failure=BOOM),
        TimerCreated(ts=200, seq=3, fire_at=300, purpose="retry"), TimerCreated(ts=200, seq=4, fire_at=300, purpose="retry"),
        StepStarted(ts=310), TimerFired(ts=305, seq=3), TimerFired(ts=305, seq=4),
        TaskScheduled(ts=310, seq=5, name="b", attempt=2), TaskScheduled(ts=310, seq=6, name="a", attempt=2),
    ]
    m = model(events, status="RUNNING", now=400)
    assert m["calls"]["n2"] == ["n2", "n3", "n5"]
    assert m["calls"]["n1"] == ["n1", "n4", "n6"]
    assert m["by_id"]["n5"]["status"] == "running" and m["end"] is None and m["span_end"] == 400


def test_event_beats_timer_and_sequence_with_a_later_event():
    events = [
        StepStarted(ts=100), ExecutionStarted(ts=100, name="approval"),
        TaskScheduled(ts=100, seq=1, name="prepare"),
        StepStarted(ts=200), TaskCompleted(ts=190, seq=1),
        TimerCreated(ts=200, seq=2, fire_at=999_999),  # when_any([event, timer])
        StepStarted(ts=300), EventRaised(ts=290, name="approved", data={"by": "<b>ann</b>"}),
        TaskScheduled(ts=300, seq=3, name="ship"),
        StepStarted(ts=400), TaskCompleted(ts=390, seq=3),
        ExecutionCompleted(ts=400, status="COMPLETED"),
    ]
    m = model(events)
    assert [s["branches"] for s in m["stages"]] == [["n1"], ["n2", "ev7"], ["n3"]]
    assert m["stages"][1]["race"] is True
    assert m["by_id"]["ev7"]["won"] is True and m["by_id"]["ev7"]["name"] == "approved"
    assert m["by_id"]["n2"]["lost"] is True and m["by_id"]["n2"]["kind"] == "timer"
    assert m["stages"][2]["triggers"] == ["ev7"]


def test_event_after_an_activity_is_its_own_stage_in_sequence():
    events = [
        StepStarted(ts=100), ExecutionStarted(ts=100, name="seq"),
        TaskScheduled(ts=100, seq=1, name="a"),
        StepStarted(ts=200), TaskCompleted(ts=190, seq=1),
        StepStarted(ts=300), EventRaised(ts=290, name="go"),
        ChildScheduled(ts=300, seq=2, name="sub", instance_id="p:2"),
        StepStarted(ts=500), ChildCompleted(ts=490, seq=2, result=1),
        ExecutionCompleted(ts=500, status="COMPLETED", result=1),
    ]
    m = model(events)
    assert [s["branches"] for s in m["stages"]] == [["n1"], ["ev6"], ["n2"]]
    assert [s["triggers"] for s in m["stages"]] == [["start"], ["n1"], ["ev6"]]
    child = m["by_id"]["n2"]
    assert child["kind"] == "child" and child["child"] == "p:2" and child["duration"] == 190


def test_terminate_cancels_open_steps_and_suspend_is_a_marker():
    events = [
        StepStarted(ts=100), ExecutionStarted(ts=100, name="long"),
        TaskScheduled(ts=100, seq=1, name="a"), TimerCreated(ts=100, seq=2, fire_at=10**9),
        StepStarted(ts=200), ExecutionSuspended(ts=195),
        StepStarted(ts=300), ExecutionTerminated(ts=290, output="stop"),
    ]
    m = model(events, status="TERMINATED")
    assert m["finish"]["status"] == "TERMINATED"
    assert m["by_id"]["n1"]["status"] == "cancelled" and m["by_id"]["n2"]["status"] == "cancelled"
    assert not m["by_id"]["n1"]["lost"]
    assert m["markers"] == [{"kind": "suspended", "ts": 195, "index": 5}]
    assert m["steps"] == 3


# -- drawn from the recorded yields (StepStarted.awaited / lost) -----------------------------------
from datetime import timedelta  # noqa: E402

from orchestrator.core.replay import replay  # noqa: E402
from orchestrator.core.tasks import when_any  # noqa: E402


def drive(workflow, *batches):
    """A history written by the replay core itself, step by step: each batch is the list of events
    the next step consumes (given that step's timestamp)."""
    history, ts = [], 100
    new = [StepStarted(ts=ts), ExecutionStarted(ts=ts, name=workflow.__name__)]
    for batch in [*batches, None]:
        result = replay(workflow, "i", history, new)
        history += [result.step_started, *new[1:], *result.actions]
        if result.completion is not None:
            history.append(result.completion)
            break
        if batch is None:
            break
        ts += 100
        new = [StepStarted(ts=ts), *batch(ts)]
    return history


def a_b_c(ctx, _):
    a = ctx.call_activity("a")
    b = ctx.call_activity("b")
    yield a
    yield ctx.call_activity("c")
    yield b
    return "done"


def test_awaiting_one_of_two_open_calls_is_not_a_race_and_the_other_feeds_the_end():
    history = drive(a_b_c,
                    lambda ts: [TaskCompleted(ts=ts - 5, seq=1, result=1), TaskCompleted(ts=ts - 1, seq=2, result=2)],
                    lambda ts: [TaskCompleted(ts=ts - 5, seq=3, result=3)])
    assert [e.awaited for e in history if isinstance(e, StepStarted)] == [(), (1,), (3, 2)]
    m = model(history)
    assert m["exact"] is True
    first, second = m["stages"]
    assert first["branches"] == ["n1", "n2"] and first["triggers"] == ["start"] and not first["race"]
    assert second["branches"] == ["n3"] and second["triggers"] == ["n1"]  # b did not trigger c
    assert m["finish"]["triggers"] == ["n3", "n2"]  # b feeds the end
    assert not any(n["won"] or n["lost"] for n in m["nodes"])
    assert {n["id"]: n["status"] for n in m["nodes"]} == {"n1": "completed", "n2": "completed", "n3": "completed"}


def race(ctx, _):
    fast, slow = ctx.call_activity("fast"), ctx.call_activity("slow")
    winner = yield when_any([fast, slow])
    return winner == fast


def test_a_recorded_when_any_is_a_race_and_the_loser_is_lost_not_abandoned():
    history = drive(race, lambda ts: [TaskCompleted(ts=ts - 1, seq=1, result=1)])
    assert [(e.awaited, e.lost) for e in history if isinstance(e, StepStarted)] == [((), None), ((1,), (2,))]
    m = model(history)
    (stage,) = m["stages"]
    assert stage["race"] is True and m["finish"]["triggers"] == ["n1"]
    assert (m["by_id"]["n1"]["won"], m["by_id"]["n1"]["status"]) == (True, "completed")
    assert (m["by_id"]["n2"]["lost"], m["by_id"]["n2"]["status"]) == (True, "lost")


def approval(ctx, _):
    event = ctx.wait_for_external_event("approve")
    timer = ctx.create_timer(timedelta(minutes=5))
    winner = yield when_any([event, timer])
    if winner == event:
        yield ctx.call_activity("ship")
    return winner == event


def test_an_event_that_beats_its_timer_joins_the_timer_stage_as_the_winner():
    history = drive(approval, lambda ts: [EventRaised(ts=ts - 1, name="approve", data=1)],
                    lambda ts: [TaskCompleted(ts=ts - 1, seq=2, result=None)])
    m = model(history)
    race_stage, ship = m["stages"]
    event_id = next(n["id"] for n in m["nodes"] if n["kind"] == "event")
    assert race_stage["race"] is True and sorted(race_stage["branches"]) == sorted(["n1", event_id])
    assert m["by_id"][event_id]["won"] is True and m["by_id"]["n1"]["lost"] is True
    assert ship["triggers"] == [event_id] and m["finish"]["triggers"] == ["n2"]


def waiter(ctx, _):
    yield ctx.call_activity("prepare")
    return (yield ctx.wait_for_external_event("go"))


def test_an_event_awaited_after_a_call_forms_its_own_stage_triggered_by_that_call():
    history = drive(waiter, lambda ts: [TaskCompleted(ts=ts - 1, seq=1, result=None)],
                    lambda ts: [EventRaised(ts=ts - 1, name="go", data=7)])
    m = model(history)
    prepare, event_stage = m["stages"]
    assert event_stage["triggers"] == ["n1"] and m["finish"]["triggers"] == event_stage["branches"]


def test_live_progress_splits_open_calls_into_queued_running_and_delivered():
    events = [StepStarted(ts=100, awaited=()), ExecutionStarted(ts=100, name="fan")]
    events += [TaskScheduled(ts=100, seq=i, name="work", input=i) for i in (1, 2, 3, 4)]
    progress = {1: {"state": "queued"}, 2: {"state": "running", "started": 120},
                3: {"state": "completed", "ts": 150}, 4: {"state": "failed", "ts": 160, "error": "ValueError: no"}}
    m = build_execution(events, now=200, status="RUNNING", progress=progress)
    by_id = {n["id"]: n for n in m["nodes"]}
    assert [by_id[f"n{i}"]["status"] for i in (1, 2, 3, 4)] == ["queued", "running", "completed", "failed"]
    assert by_id["n3"]["delivered"] and by_id["n4"]["error"] == "ValueError: no" and by_id["n2"]["started"] == 120
    assert m["stages"][0]["progress"] == {"queued": 1, "running": 1, "completed": 1, "failed": 1}
    assert m["progress"] == {"queued": 1, "running": 1, "completed": 1, "failed": 1}
