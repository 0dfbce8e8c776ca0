"""The pure parts of the Dapr surface: the object data model, timed event waits, deterministic ids,
named versions with is_latest, and the chained failure text. History in, decisions out."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from orchestrator.core.errors import PayloadError
from orchestrator.core.history import EventRaised, StepStarted, TaskCompleted, TaskScheduled, TimerCreated, TimerFired
from orchestrator.core.payload import AUTO_OBJECT, coerce, from_payload, to_json_compatible
from orchestrator.core.registry import Registry
from orchestrator.core.replay import replay
from orchestrator.core.vocabulary import Status

from .test_replay import T0, start


@dataclass
class Item:
    sku: str
    qty: int


@dataclass
class Order:
    order_id: str
    items: list[Item]


def test_objects_travel_as_marked_json_and_come_back_with_attributes():
    stored = to_json_compatible(Order("o1", [Item("a", 2)]))
    assert stored == {"order_id": "o1", "items": [{"sku": "a", "qty": 2, AUTO_OBJECT: True}], AUTO_OBJECT: True}
    back = from_payload(stored)
    assert isinstance(back, SimpleNamespace) and back.items[0].qty == 2
    assert stored[AUTO_OBJECT] is True  # decoding never mutates the stored value
    assert from_payload({"plain": {"dict": 1}}) == {"plain": {"dict": 1}}  # dicts stay dicts, as in Dapr
    rebuilt = coerce(Order, back)
    assert rebuilt == Order("o1", [Item("a", 2)])  # an annotated parameter gets the dataclass, nested too


def test_a_deep_object_is_refused_by_the_payload_depth_rule_not_a_recursion_error():
    deep = None
    for i in range(5000):
        deep = Item(str(i), 0) if deep is None else SimpleNamespace(child=deep)
    with pytest.raises(PayloadError, match="more than 100 levels deep"):
        to_json_compatible(deep)


def timed(ctx, _):
    try:
        got = yield ctx.wait_for_external_event("approve", timeout=5)
    except Exception as exc:  # noqa: BLE001 - the test reports what the workflow saw
        return f"{type(exc).__name__}: {exc}"
    return got


def test_a_timed_event_wait_takes_the_event_or_fails_with_timeout_error():
    first = replay(timed, "i", [], start())
    [timer] = first.actions
    assert isinstance(timer, TimerCreated) and timer.fire_at == T0 + 5000
    past = start() + [timer]
    arrived = replay(timed, "i", past, [StepStarted(ts=T0 + 10), EventRaised(ts=T0 + 10, name="APPROVE", data="yes")])
    assert arrived.completion.result == "yes"
    late = replay(timed, "i", past, [StepStarted(ts=T0 + 5000), TimerFired(ts=T0 + 5000, seq=timer.seq)])
    assert late.completion.status == Status.COMPLETED
    assert late.completion.result == "TaskFailedError: timed out waiting for external event 'approve' after 5 s"


def ids(ctx, _):
    yield ctx.call_activity("noop")
    return [ctx.new_uuid(), ctx.new_uuid(), str(ctx.uuid4()), ctx.random_string(8), ctx.random().randint(1, 6)]


def test_deterministic_ids_are_the_same_on_every_replay_and_differ_between_instances():
    past = start() + [TaskScheduled(ts=T0, seq=1, name="noop")]
    new = [StepStarted(ts=T0 + 1), TaskCompleted(ts=T0 + 1, seq=1, result=None)]
    one, again, other = (replay(ids, i, past, new).completion.result for i in ("a", "a", "b"))
    assert one == again and one != other
    assert one[0] != one[1] and len(one[3]) == 8 and 1 <= one[4] <= 6


def test_the_version_registered_is_latest_is_what_new_instances_run():
    registry = Registry()

    def version1(ctx):
        return 1

    def version2(ctx):
        return 2

    registry.add_workflow(version2, "flow", "version2", is_latest=True)
    registry.add_workflow(version1, "flow", "version1", is_latest=False)
    assert registry.latest_version("flow") == "version2" and registry.workflows["flow"] is version2
    with pytest.raises(ValueError, match="Workflow version1 already registered as flow"):
        registry.add_workflow(version1, "other")


def test_an_unhandled_call_failure_carries_dapr_chained_message_and_the_root_type():
    from orchestrator.core.errors import FailureDetails
    from orchestrator.core.history import TaskFailed

    def wf(ctx, _):
        yield ctx.call_activity("charge")

    past = start() + [TaskScheduled(ts=T0, seq=1, name="charge")]
    failure = FailureDetails.from_exception(KeyError("card"))
    assert (failure.error_type, failure.qualified_type) == ("KeyError", None)  # builtins stay bare
    done = replay(wf, "i", past, [StepStarted(ts=T0 + 1), TaskFailed(ts=T0 + 1, seq=1, failure=failure)])
    assert done.completion.failure.error_type == "KeyError"
    assert done.completion.failure.message == "Activity task #1 ('charge') failed: 'card'"
