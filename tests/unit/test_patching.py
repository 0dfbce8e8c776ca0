"""ctx.is_patched / deprecate_patch and named versions, on the pure replay core (histories in, decisions out)."""

from __future__ import annotations

import pytest

from orchestrator.codec import pack_events, unpack_events
from orchestrator.core.errors import FailureDetails, NonDeterminismError
from orchestrator.core.history import (
    EVENT_TYPES,
    ChildCompleted,
    ChildFailed,
    ChildScheduled,
    ContinuedAsNew,
    EventRaised,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryFormatError,
    PatchMarker,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    event_from_dict,
    event_to_dict,
)
from orchestrator.core.registry import Registry, version_key
from orchestrator.core.replay import WorkflowExecution, replay

T0 = 1_700_000_000_000


def v1(ctx, _):
    a = yield ctx.call_activity("a")
    b = yield ctx.call_activity("b")
    return [a, b]


def v2(ctx, _):
    """v1 plus an audit call after "a", guarded by a patch."""
    a = yield ctx.call_activity("a")
    if ctx.is_patched("audit"):
        yield ctx.call_activity("audit")
    b = yield ctx.call_activity("b")
    return [a, b]


def v2_unguarded(ctx, _):
    a = yield ctx.call_activity("a")
    yield ctx.call_activity("audit")
    b = yield ctx.call_activity("b")
    return [a, b]


def v3_deprecated(ctx, _):
    """Step 2 of retiring the patch: no old path left, the marker still recorded."""
    a = yield ctx.call_activity("a")
    ctx.deprecate_patch("audit")
    yield ctx.call_activity("audit")
    b = yield ctx.call_activity("b")
    return [a, b]


def run(workflow, instance_id="i", steps=(), done=None):
    """Drive ``workflow`` the way the engine does: one step per inbox batch, results fed by name.
    Returns the recorded history (a list of events)."""
    history = []
    inbox = [[ExecutionStarted(ts=T0, name="wf")]] + [[e] for e in steps]
    for n, events in enumerate(inbox):
        new = [StepStarted(ts=T0 + n), *events]
        result = replay(workflow, instance_id, history, new)
        history += new + result.actions + ([result.completion] if result.completion else [])
    return history


def scheduled(history):
    return [(e.seq, e.name) for e in history if isinstance(e, TaskScheduled)]


def test_a_new_instance_takes_the_patched_path_and_records_a_marker_without_a_seq():
    first = replay(v2, "i", [], [StepStarted(ts=T0), ExecutionStarted(ts=T0, name="wf")])
    past = [StepStarted(ts=T0), ExecutionStarted(ts=T0, name="wf"), *first.actions]
    second = replay(v2, "i", past, [StepStarted(ts=T0 + 1), TaskCompleted(ts=T0, seq=1, result="A")])
    assert second.actions == [PatchMarker(ts=T0 + 1, name="audit", position=1),
                              TaskScheduled(ts=T0 + 1, seq=2, name="audit")]
    history = run(v2, steps=[TaskCompleted(ts=T0, seq=1, result="A"), TaskCompleted(ts=T0, seq=2, result=None),
                             TaskCompleted(ts=T0, seq=3, result="B")])
    assert scheduled(history) == [(1, "a"), (2, "audit"), (3, "b")]  # "b" is seq 3, as without a marker
    assert history[-1] == ExecutionCompleted(ts=T0 + 3, status="COMPLETED", result=["A", "B"])
    # Replayed from scratch (a worker restart), the marker makes is_patched True again.
    again = replay(v2, "i", history[:-1], [])
    assert again.actions == [] and again.completion.result == ["A", "B"]


def test_an_instance_whose_history_predates_the_patch_keeps_the_old_path():
    # v1 recorded "a" done and "b" scheduled; the pool restarts with v2.
    old = run(v1, steps=[TaskCompleted(ts=T0, seq=1, result="A")])
    assert scheduled(old) == [(1, "a"), (2, "b")]
    result = replay(v2, "i", old, [StepStarted(ts=T0 + 9), TaskCompleted(ts=T0, seq=2, result="B")])
    assert result.actions == [] and result.completion.result == ["A", "B"]  # no audit, no marker


def test_an_instance_that_reaches_the_patch_after_the_deploy_takes_the_new_path():
    # v1 is blocked on "a" when v2 is deployed: the patch point is still ahead of it.
    old = run(v1)
    assert scheduled(old) == [(1, "a")]
    result = replay(v2, "i", old, [StepStarted(ts=T0 + 9), TaskCompleted(ts=T0, seq=1, result="A")])
    assert [type(a).__name__ for a in result.actions] == ["PatchMarker", "TaskScheduled"]
    assert result.actions[1].name == "audit"


def test_unguarded_change_names_workflow_step_calls_and_patching():
    old = run(v1, steps=[TaskCompleted(ts=T0, seq=1, result="A")])
    with pytest.raises(NonDeterminismError) as err:
        replay(v2_unguarded, "order-7", old, [StepStarted(ts=T0 + 9), TaskCompleted(ts=T0, seq=2, result="B")])
    e = err.value
    assert (e.workflow, e.instance_id, e.step, e.position) == ("wf", "order-7", 2, 6)
    assert e.recorded == "activity 'b' (call #2)" and e.requested == "asked for activity 'audit' (call #2)"
    assert "is not deterministic at step 2 (history event #6)" in str(e)
    assert "ctx.is_patched" in str(e) and "version" in str(e)


def test_first_answer_holds_for_the_run_and_markers_are_looked_up_ahead_incrementally():
    def loop(ctx, _):
        answers = []
        for _ in range(3):
            answers.append(ctx.is_patched("p"))
            yield ctx.call_activity("x")
        return answers

    history = run(loop, steps=[TaskCompleted(ts=T0, seq=n, result=n) for n in (1, 2, 3)])
    assert [e for e in history if isinstance(e, PatchMarker)] == [PatchMarker(ts=T0, name="p", position=0)]
    assert history[-1].result == [True, True, True]
    # A worker holding the execution catches up step by step; the marker sits after the code that asked.
    execution = WorkflowExecution(loop, "i")
    execution.catch_up(history[:4])  # step 1: StepStarted, ExecutionStarted, PatchMarker, TaskScheduled
    execution.catch_up(history[4:-1])
    assert execution.completion.result == [True, True, True]


def test_a_marker_that_history_has_later_than_the_code_asks_is_nondeterminism():
    def late(ctx, _):
        yield ctx.call_activity("x")
        if ctx.is_patched("p"):
            yield ctx.call_activity("new")
        return "done"

    def early(ctx, _):
        early_answer = ctx.is_patched("p")
        yield ctx.call_activity("x")
        if early_answer:
            yield ctx.call_activity("new")
        return "done"

    history = run(late, steps=[TaskCompleted(ts=T0, seq=1), TaskCompleted(ts=T0, seq=2)])
    with pytest.raises(NonDeterminismError, match=r"ctx.is_patched\('p'\) = True after call #1.*got False"):
        replay(early, "i", history, [])


def test_retiring_a_patch_deprecate_then_remove():
    patched = run(v2, steps=[TaskCompleted(ts=T0, seq=n) for n in (1, 2, 3)])
    unpatched = run(v1, steps=[TaskCompleted(ts=T0, seq=n) for n in (1, 2)])
    # deprecate_patch: replays patched histories, and records the marker for new instances.
    assert replay(v3_deprecated, "i", patched[:-1], []).completion.status == "COMPLETED"
    fresh = run(v3_deprecated, steps=[TaskCompleted(ts=T0, seq=n) for n in (1, 2, 3)])
    assert [e.name for e in fresh if isinstance(e, PatchMarker)] == ["audit"]
    assert replay(v2, "i", fresh[:-1], []).completion.status == "COMPLETED"  # old workers agree (rolling deploy)
    # The guard removed entirely: markers the code no longer asks about are ignored.
    assert replay(v2_unguarded, "i", patched[:-1], []).completion.status == "COMPLETED"
    # Too early: an instance that predates the patch is still around -> reported, not silently changed.
    with pytest.raises(NonDeterminismError, match="'audit'"):
        replay(v3_deprecated, "i", unpatched[:-1], [])


def test_patch_names_must_be_non_empty_strings():
    def bad(ctx, _):
        ctx.is_patched("  ")
        yield ctx.call_activity("x")

    result = replay(bad, "i", [], [StepStarted(ts=T0), ExecutionStarted(ts=T0, name="wf")])
    assert result.completion.status == "FAILED"
    assert "the patch name of is_patched '  ' is empty" in result.completion.failure.message


def test_every_event_kind_survives_msgpack_and_json_round_trips():
    failure = FailureDetails("boom", "ValueError", "Traceback...", retry_after_ms=250)
    events = [
        StepStarted(ts=1), ExecutionStarted(ts=2, name="wf", input={"a": [1, 2]}, version="2"),
        TaskScheduled(ts=3, seq=1, name="x", input=None, app_id="other", attempt=2),
        TaskCompleted(ts=4, seq=1, result={"ok": True}), TaskFailed(ts=5, seq=1, failure=failure),
        TimerCreated(ts=6, seq=2, fire_at=99, purpose="retry"), TimerFired(ts=7, seq=2),
        EventRaised(ts=8, name="go", data=[1]), ChildScheduled(ts=9, seq=3, name="c", instance_id="i:3"),
        ChildCompleted(ts=10, seq=3, result=1), ChildFailed(ts=11, seq=3, failure=failure),
        ExecutionCompleted(ts=12, status="FAILED", failure=failure), ContinuedAsNew(ts=13, input=5),
        ExecutionTerminated(ts=14, output="x", recursive=False), ExecutionSuspended(ts=15, reason="r"),
        ExecutionResumed(ts=16), PatchMarker(ts=17, name="p", position=4),
    ]
    assert {type(e) for e in events} == set(EVENT_TYPES.values())
    assert max(EVENT_TYPES) == PatchMarker.KIND == 17  # new kinds go at the end; never renumber
    assert unpack_events(pack_events(events)) == events
    assert [event_from_dict(event_to_dict(e)) for e in events] == events
    # An unversioned ExecutionStarted packed by older code (no version field) still decodes.
    assert unpack_events(pack_events([ExecutionStarted(ts=1, name="wf")]))[0].version is None


@pytest.mark.parametrize("data, message", [
    ({"kind": "Nope"}, "unknown history event kind 'Nope'"),
    ({"kind": "TaskScheduled", "seq": 1}, "malformed TaskScheduled"),
    ({"kind": "TimerFired", "seq": 1, "extra": 2}, r"unknown field\(s\) \['extra'\]"),
    ({"kind": "TaskFailed", "seq": 1, "failure": {"message": "x"}}, "error_type and message"),
    ([1, 2], "must be a JSON object"),
])
def test_event_from_dict_names_what_is_wrong(data, message):
    with pytest.raises(HistoryFormatError, match=message):
        event_from_dict(data)


def test_named_versions_latest_is_the_highest_in_natural_order():
    registry = Registry()

    def old(ctx, _):
        return "old"

    def v2_(ctx, _):
        return "2"

    def v10(ctx, _):
        return "10"

    registry.add_workflow(old, "order")
    registry.add_workflow(v10, "order", version="10")
    registry.add_workflow(v2_, "order", version=2)
    assert registry.latest_version("order") == "10" and registry.workflows["order"] is v10
    assert registry.workflow("order", None) is old and registry.workflow("order", "2") is v2_
    assert registry.workflow("order", "3") is None and registry.workflow("other", None) is None
    assert registry.describe_versions("order") == "unversioned, '2', '10'"
    assert sorted(["v10", "v2", "", "1"], key=version_key) == ["", "1", "v2", "v10"]
    with pytest.raises(ValueError, match="already registered"):  # the same function again: Dapr's error
        registry.add_workflow(v2_, "order", version="2")
    with pytest.raises(ValueError, match="workflow 'order' version '2' is already registered"):
        registry.add_workflow(lambda ctx, _: "other", "order", version="2")
    with pytest.raises(ValueError, match="invalid workflow version ''"):
        registry.add_workflow(v10, "order", version="")
