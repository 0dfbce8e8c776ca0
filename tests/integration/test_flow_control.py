"""Flow control with real pools: per-key concurrency limits held and fair, a killed pool's slots freed,
a rate limit shared by two pools, activity concurrency limits, priorities and deduplication ids.
Everything is checked from the recorded histories' timestamps, never from timed asserts."""

from __future__ import annotations

import statistics
import time
from typing import Any

from orchestrator import WorkflowClient
from tests.support.waiting import wait_until

APP = "tests.apps.flow_app"


def _span(client: WorkflowClient, instance_id: str) -> tuple[int, int]:
    """When the run started running (its first step) and when it finished, from its history."""
    history = client.get_workflow_history(instance_id)
    first = next(e["ts"] for e in history if e["kind"] == "StepStarted")
    return first, history[-1]["ts"]


def _max_overlap(spans: list[tuple[int, int]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    return peak


def _wait_all(client: WorkflowClient, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for instance_id in ids:
        left = max(1.0, deadline - time.monotonic())
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=left)
        assert state is not None and state.runtime_status.name == "COMPLETED", (instance_id, state)


def test_per_customer_limit_holds_and_is_fair(client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP, concurrency=4)
    start_pool(APP, concurrency=4)
    customers = ["alice", "bob", "carol", "dave", "erin"]
    # Customer by customer: without round-robin between keys, the last customers would wait for the first.
    ids = {c: [client.schedule_new_workflow("customer_order", input={"customer": c, "n": i}) for i in range(10)]
           for c in customers}
    # Waiting work is PENDING and says why.
    wait_until(lambda: any((r := client.store.get_meta(i).flow_wait) and "per key" in r
                           for c in customers for i in ids[c]), timeout=30, what="a run that shows why it waits")
    _wait_all(client, [i for c in customers for i in ids[c]], 180)
    spans = {c: [_span(client, i) for i in ids[c]] for c in customers}
    for c in customers:
        assert _max_overlap(spans[c]) <= 2, f"{c} had more than 2 running at once"
    assert _max_overlap([s for c in customers for s in spans[c]]) <= 6
    # Fair: every customer got its first run going before half of all the work was done.
    ends = sorted(e for c in customers for _, e in spans[c])
    halfway = statistics.median(ends)
    for c in customers:
        assert min(s for s, _ in spans[c]) < halfway, f"{c} waited for the others"
    began = min(s for c in customers for s, _ in spans[c])
    print("per customer: first start / last end (s after the first start):",
          {c: (round((min(s for s, _ in spans[c]) - began) / 1000, 1),
               round((max(e for _, e in spans[c]) - began) / 1000, 1)) for c in customers})
    status = {s["scope"]: s for s in client.flow_control_status()}
    assert status["w:customer_order"]["running"] == 0 and status["w:customer_order"]["waiting"] == 0


def test_a_killed_pools_slots_are_freed_and_the_queued_work_continues(client: WorkflowClient,
                                                                       start_pool: Any) -> None:
    doomed = start_pool(APP, concurrency=4, env={"FLOW_APP_WORK_SECONDS": "3"})
    ids = [client.schedule_new_workflow("customer_order", input={"customer": "kim", "n": i}) for i in range(5)]
    wait_until(lambda: sum(client.get_workflow_state(i).runtime_status.name == "RUNNING" for i in ids) >= 2,
               timeout=30, what="two runs to start")
    doomed.kill()  # SIGKILL while it holds both of kim's slots
    start_pool(APP, concurrency=4, env={"FLOW_APP_WORK_SECONDS": "0.1"})
    _wait_all(client, ids, 240)
    assert _max_overlap([_span(client, i) for i in ids]) <= 2


def test_rate_limit_across_two_pools(client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP, concurrency=3)
    start_pool(APP, concurrency=3)
    instance_id = client.schedule_new_workflow("ping_many", input=360)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=180)
    assert state is not None and state.output == 360
    history = client.get_workflow_history(instance_id)
    starts = sorted(e["ts"] - (e.get("run_ms") or 0) for e in history if e["kind"] == "TaskCompleted")
    assert len(starts) == 360
    first = starts[0]
    in_30s = sum(1 for t in starts if t < first + 30_000)
    print(f"rate limit 10/s over two pools: {in_30s} starts in the first 30 s")  # the figure, with -s
    assert 270 <= in_30s <= 330, f"{in_30s} starts in the first 30 s at 10 per second"


def test_activity_concurrency_limit_across_pools(client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP, concurrency=4)
    start_pool(APP, concurrency=4)
    instance_id = client.schedule_new_workflow("limited_fanout", input=24)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=120)
    assert state is not None and state.output == sum(range(24))
    history = client.get_workflow_history(instance_id)
    spans = [(e["ts"] - e["run_ms"], e["ts"]) for e in history if e["kind"] == "TaskCompleted"]
    assert len(spans) == 24 and _max_overlap(spans) <= 4


def test_dedup_id_returns_the_live_instance(client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP, concurrency=2)
    first = client.schedule_new_workflow("plain_order", input={"customer": "x", "n": 1}, dedup_id="order-42")
    again = client.schedule_new_workflow("plain_order", input={"customer": "x", "n": 1}, dedup_id="order-42")
    assert again == first
    client.wait_for_workflow_completion(first, timeout_in_seconds=30)
    # Finished: the dedup id is free again, the next start is a new instance.
    later = client.schedule_new_workflow("plain_order", input={"customer": "x", "n": 2}, dedup_id="order-42")
    assert later != first
    assert client.wait_for_workflow_completion(later, timeout_in_seconds=30).runtime_status.name == "COMPLETED"


def test_priorities_order_the_queue(client: WorkflowClient, start_pool: Any) -> None:
    # No pool yet: starts queue up. Then one pool with one process takes them most urgent first.
    low = [client.schedule_new_workflow("plain_order", input={"customer": "l", "n": i}, app_id="default",
                                        priority=9) for i in range(5)]
    high = [client.schedule_new_workflow("plain_order", input={"customer": "h", "n": i}, app_id="default",
                                         priority=0) for i in range(5)]
    assert client.get_workflow_state(high[0]).runtime_status.name == "PENDING"
    start_pool(APP, concurrency=1)
    _wait_all(client, low + high, 120)
    first_steps = {i: _span(client, i)[0] for i in low + high}
    assert max(first_steps[i] for i in high) < min(first_steps[i] for i in low)


def test_a_killed_holders_activity_slot_is_released_by_liveness(client: WorkflowClient, start_pool: Any) -> None:
    doomed = start_pool(APP, concurrency=2, env={"FLOW_APP_WORK_SECONDS": "120"})
    instance_id = client.schedule_new_workflow("exclusive_fanout", input=4)
    deadline = time.monotonic() + 30
    while not any(s["scope"] == "a:exclusive_work" and s["running"] == 1 and s["waiting"] >= 1
                  for s in client.flow_control_status()):
        assert time.monotonic() < deadline, client.flow_control_status()
        time.sleep(0.1)
    doomed.kill()  # SIGKILL while it holds the only slot, with the other attempts queued behind it
    start_pool(APP, concurrency=2, env={"FLOW_APP_WORK_SECONDS": "0.1"})
    # The liveness sweeper reaps the dead process (process_expiry, 10 s) and its hook frees the slot:
    # far sooner than the 1 h visibility timeout, and the queued attempts go on one at a time.
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=90)
    assert state is not None and state.output == [0, 1, 2, 3]
    history = client.get_workflow_history(instance_id)
    spans = [(e["ts"] - e["run_ms"], e["ts"]) for e in history if e["kind"] == "TaskCompleted"]
    assert _max_overlap(spans) <= 1
