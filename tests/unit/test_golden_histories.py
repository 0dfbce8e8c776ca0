"""Golden histories: what the ``workers/`` examples recorded when run for real (tests/histories/,
written by ``python -m tests.histories.export``) must replay against today's code, on every run;
and every history event kind must encode to exactly the bytes it always did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.codec import pack_event, pack_events, unpack_event
from orchestrator.core.errors import FailureDetails
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
    HistoryEvent,
    PatchMarker,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from orchestrator.testing import assert_replays
from workers import examples, monitor, order_approval, saga
from workers.multi_app import inventory, orders

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
EXAMPLES = [examples.wfr, order_approval.wfr, monitor.wfr, saga.wfr, orders.wfr, inventory.wfr]


def test_every_golden_history_replays() -> None:
    files = sorted(HISTORIES.glob("*.json"))
    assert len(files) >= 11
    report = assert_replays(files, EXAMPLES)
    assert len(report.results) == len(files) and report.ok


def test_every_example_workflow_has_a_golden_history() -> None:
    recorded = {json.loads(p.read_text())["instance"]["name"] for p in HISTORIES.glob("*.json")}
    defined = {name for runtime in EXAMPLES for name in runtime.registry.workflows}
    assert recorded == defined


FAILURE = FailureDetails("no car", "workers.saga.NoAvailabilityError", "Traceback (most recent call last): ...", 1500)
# One instance of every event kind, and the exact msgpack bytes it has always been stored as (taken
# from the encoder before the codec moved out of the core: orchestrator.core.history.pack_event).
GOLDEN: list[tuple[HistoryEvent, str]] = [
    (StepStarted(ts=1700000000000), "9201cf0000018bcfe56800"),
    (ExecutionStarted(ts=1, name="checkout", input={"items": [1, 2]}, version="2"), "950201a8636865636b6f757481a56974656d73920102a132"),
    (TaskScheduled(ts=2, seq=3, name="charge", input=9.5, app_id="billing", attempt=2), "97030203a6636861726765cb4023000000000000a762696c6c696e6702"),
    (TaskCompleted(ts=3, seq=3, result={"ok": True}), "9404030381a26f6bc3"),
    (TaskFailed(ts=4, seq=3, failure=FAILURE), (
        "9405040394d920776f726b6572732e736167612e4e6f417661696c6162696c6974794572726f72a66e6f20636172d9265472"
        "6163656261636b20286d6f737420726563656e742063616c6c206c617374293a202e2e2ecd05dc")),
    (TimerCreated(ts=5, seq=4, fire_at=1700000600000, purpose="retry"), "95060504cf0000018bcfee8fc0a57265747279"),
    (TimerFired(ts=6, seq=4), "93070604"),
    (EventRaised(ts=7, name="human_approval", data={"approved": True}), "940807ae68756d616e5f617070726f76616c81a8617070726f766564c3"),
    (ChildScheduled(ts=8, seq=5, name="restock", instance_id="o-1:5", input=[{"sku": "pear"}], app_id="inventory"),
     "97090805a7726573746f636ba56f2d313a359181a3736b75a470656172a9696e76656e746f7279"),
    (ChildCompleted(ts=9, seq=5, result=[1]), "940a09059101"),
    (ChildFailed(ts=10, seq=5, failure=FailureDetails("boom", "ValueError")), "940b0a0593aa56616c75654572726f72a4626f6f6dc0"),
    (ExecutionCompleted(ts=11, status="COMPLETED", result="done"), "950c0ba9434f4d504c45544544a4646f6e65c0"),
    (ContinuedAsNew(ts=12, input={"checks": 2}), "930d0c81a6636865636b7302"),
    (ExecutionTerminated(ts=13, output="stop", recursive=False), "940e0da473746f70c2"),
    (ExecutionSuspended(ts=14, reason="maintenance"), "930f0eab6d61696e74656e616e6365"),
    (ExecutionResumed(ts=15), "93100fc0"),
    (PatchMarker(ts=16, name="new-pricing", position=4), "941110ab6e65772d70726963696e6704"),
]


def test_golden_bytes_cover_every_event_kind() -> None:
    assert {type(event) for event, _ in GOLDEN} == set(EVENT_TYPES.values())


@pytest.mark.parametrize(("event", "hex_bytes"), GOLDEN, ids=[type(e).__name__ for e, _ in GOLDEN])
def test_an_event_encodes_to_its_golden_bytes(event: HistoryEvent, hex_bytes: str) -> None:
    golden = bytes.fromhex(hex_bytes)
    assert pack_event(event) == golden
    assert unpack_event(golden) == event
    assert pack_events([event, event]) == b"\x92" + golden * 2
