"""What each step's yields received, recorded on its StepStarted: compact, and compatible both ways."""

from __future__ import annotations

import msgpack

from orchestrator.codec import pack_event, pack_events, unpack_event, unpack_events
from orchestrator.core.history import (
    EventRaised,
    ExecutionStarted,
    StepStarted,
    TaskCompleted,
    TaskScheduled,
    event_from_dict,
    event_to_dict,
    task_ref,
)
from orchestrator.core.replay import replay
from orchestrator.core.tasks import when_all


def test_a_step_without_the_record_keeps_its_old_bytes_and_the_record_costs_a_few():
    assert pack_event(StepStarted(ts=1_700_000_000_000)) == msgpack.packb([1, 1_700_000_000_000])
    assert pack_event(StepStarted(ts=5, awaited=())) == msgpack.packb([1, 5, []])
    assert pack_event(StepStarted(ts=5, awaited=(3,))) == msgpack.packb([1, 5, [3]])
    assert pack_event(StepStarted(ts=5, awaited=(1,), lost=(2,))) == msgpack.packb([1, 5, [1], [2]])
    assert len(pack_event(StepStarted(ts=1_700_000_000_000, awaited=(42,)))) - len(
        pack_event(StepStarted(ts=1_700_000_000_000))) == 2


def test_old_records_decode_with_no_record_and_new_ones_round_trip():
    old = unpack_event(msgpack.packb([1, 77]))
    assert old == StepStarted(ts=77) and old.awaited is None and old.lost is None
    new = StepStarted(ts=5, awaited=(1, -4), lost=(2,))
    assert unpack_event(pack_event(new)) == new
    assert unpack_events(pack_events([new, StepStarted(ts=6)])) == [new, StepStarted(ts=6)]
    assert hash(new) == hash(unpack_event(pack_event(new)))


def test_the_json_form_leaves_out_an_absent_record_and_reads_both_back():
    assert event_to_dict(StepStarted(ts=3)) == {"kind": "StepStarted", "ts": 3}
    assert event_to_dict(StepStarted(ts=3, awaited=(1,))) == {"kind": "StepStarted", "ts": 3, "awaited": [1]}
    assert event_from_dict({"kind": "StepStarted", "ts": 3}) == StepStarted(ts=3)
    assert event_from_dict({"kind": "StepStarted", "ts": 3, "awaited": [1], "lost": [2]}) == StepStarted(
        ts=3, awaited=(1,), lost=(2,))


def fan(ctx, n):
    values = yield when_all([ctx.call_activity("work", input=i) for i in range(n)])
    event = yield ctx.wait_for_external_event("go")
    return [sum(values), event]


def test_a_history_written_before_the_record_replays_and_the_next_step_is_stamped():
    old = [StepStarted(ts=1), ExecutionStarted(ts=1, name="fan", input=2),
           TaskScheduled(ts=1, seq=1, name="work", input=0), TaskScheduled(ts=1, seq=2, name="work", input=1),
           StepStarted(ts=2), TaskCompleted(ts=2, seq=1, result=3), TaskCompleted(ts=2, seq=2, result=4)]
    new = [StepStarted(ts=3), EventRaised(ts=3, name="go", data="x")]
    result = replay(fan, "i", old, new)
    assert result.completion is not None and result.completion.result == [7, "x"]
    event_index = len(old) + 1  # after the step's own StepStarted
    assert result.step_started == StepStarted(ts=3, awaited=(task_ref(event_index=event_index),))
    assert task_ref(event_index=event_index) == -9


def test_the_fan_in_step_records_every_branch_it_received():
    first = replay(fan, "i", [], [StepStarted(ts=1), ExecutionStarted(ts=1, name="fan", input=3)])
    assert first.step_started == StepStarted(ts=1, awaited=())
    past = [first.step_started, ExecutionStarted(ts=1, name="fan", input=3), *first.actions]
    done = [TaskCompleted(ts=2, seq=s, result=s) for s in (3, 1, 2)]
    second = replay(fan, "i", past, [StepStarted(ts=2), *done])
    assert second.step_started.awaited == (1, 2, 3) and second.step_started.lost is None


def race(ctx, _):
    from datetime import timedelta

    from orchestrator.core.tasks import when_any

    event = ctx.wait_for_external_event("go")
    winner = yield when_any([event, ctx.create_timer(timedelta(minutes=1))])
    return winner == event


def test_a_held_execution_names_events_by_their_index_in_the_stored_history():
    from orchestrator.core.replay import WorkflowExecution

    held = WorkflowExecution(race, "i")  # as a worker's replay cache keeps it between steps
    first = held.step([StepStarted(ts=1), ExecutionStarted(ts=1, name="race")])
    held.committed()
    history = [first.step_started, ExecutionStarted(ts=1, name="race"), *first.actions]
    second = held.step([StepStarted(ts=2), EventRaised(ts=2, name="go")])
    index = len(history) + 1  # after the second step's own StepStarted
    assert second.step_started.awaited == (task_ref(event_index=index),)
    assert held.history_length == len(history) + 2
