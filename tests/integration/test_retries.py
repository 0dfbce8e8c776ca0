"""Retries, timeouts, circuit breaker, Celery time limits and the saga: real redis-server, real pools,
real SIGKILL. Activities record each execution in Redis (``<key>:runs``), so counts survive kills."""

from __future__ import annotations

from orchestrator import WorkflowStatus
from tests.support.store_keys import score
from tests.support.waiting import wait_until

APP = "tests.apps.retry_app"


def finished(client, instance_id, status=WorkflowStatus.COMPLETED, timeout=60):
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
    assert state is not None and state.runtime_status == status, (state.runtime_status, state.failure_details)
    return state


def runs(redis_client, key):
    """The attempt numbers of every execution of the activity, in order."""
    return [int(v) for v in redis_client.lrange(f"{key}:runs", 0, -1)]


def of_kind(history, kind, **fields):
    return [e for e in history if e["kind"] == kind and all(e.get(k) == v for k, v in fields.items())]


def flaky_spec(key, fail_times=2, **policy):
    return {"activity": "flaky", "input": {"key": key, "fail_times": fail_times},
            "interval": 1, "coefficient": 2, "attempts": 5, **policy}


def assert_three_attempts_with_backoff(history):
    scheduled = of_kind(history, "TaskScheduled", name="flaky")
    assert [e["attempt"] for e in scheduled] == [1, 2, 3]
    gaps = [b["ts"] - a["ts"] for a, b in zip(scheduled, scheduled[1:])]
    assert gaps[0] >= 1000 and gaps[1] >= 2000, gaps
    failures = [(e["failure"]["error_type"], e["failure"]["message"]) for e in of_kind(history, "TaskFailed")]
    assert failures == [("ConnectionError", "attempt 1 could not connect"),
                        ("ConnectionError", "attempt 2 could not connect")]
    # Each wait was a durable timer of the policy's delay (1 s, then 2 s), set when the failure was seen.
    backoffs = of_kind(history, "TimerCreated", purpose="retry")
    assert [t["fire_at"] - t["ts"] for t in backoffs] == [1000, 2000]


# -- durable retries --------------------------------------------------------------------------------

def test_activity_failing_twice_then_succeeding_completes_after_backoffs(client, start_pool, redis_client):
    start_pool(APP)
    instance_id = client.schedule_new_workflow("retry_call", input=flaky_spec("twice"))
    assert finished(client, instance_id).output == {"attempt": 3}
    assert_three_attempts_with_backoff(client.get_workflow_history(instance_id))
    assert runs(redis_client, "twice") == [1, 2, 3]


def test_pool_killed_during_second_backoff_resumes_the_same_schedule(client, start_pool, redis_client):
    pool = start_pool(APP)
    instance_id = client.schedule_new_workflow("retry_call", input=flaky_spec("killed"))
    second = wait_until(lambda: of_kind(client.get_workflow_history(instance_id), "TimerCreated", purpose="retry")[1:],
                        what="the second backoff timer")[0]
    # Attempt 2's Celery message must be acknowledged before the kill, or kombu would redeliver it.
    wait_until(lambda: redis_client.hlen("unacked") == 0, what="attempt 2's message to be acked")
    pool.kill()
    member = f"{instance_id}|{client.store.get_meta(instance_id).task_key(second['seq'])}"
    assert score(redis_client, "timers", member) == second["fire_at"], "killed after the backoff ended"
    assert runs(redis_client, "killed") == [1, 2]
    start_pool(APP)
    assert finished(client, instance_id).output == {"attempt": 3}
    history = client.get_workflow_history(instance_id)
    assert_three_attempts_with_backoff(history)
    # The attempt count continued (no second "attempt 1"), and no attempt ran twice.
    assert runs(redis_client, "killed") == [1, 2, 3]


def test_exhausted_retries_fail_with_the_last_error(client, start_pool, redis_client):
    start_pool(APP)
    spec = flaky_spec("always", fail_times=99, interval=0.2, coefficient=1, attempts=3)
    instance_id = client.schedule_new_workflow("retry_call", input=spec)
    state = finished(client, instance_id, WorkflowStatus.FAILED)
    assert state.failure_details.error_type == "ConnectionError"
    assert state.failure_details.message.endswith("failed: attempt 3 could not connect")  # Dapr's chained text
    assert "flaky" in state.failure_details.stack_trace
    history = client.get_workflow_history(instance_id)
    assert [e["attempt"] for e in of_kind(history, "TaskScheduled")] == [1, 2, 3]
    assert len(of_kind(history, "TaskFailed")) == 3
    assert runs(redis_client, "always") == [1, 2, 3]


def test_non_retryable_errors_are_not_retried(client, start_pool, redis_client):
    start_pool(APP)
    declined = client.schedule_new_workflow("retry_call", input={
        "activity": "refuse", "input": {"key": "declined"}, "interval": 0.2, "attempts": 5})
    listed = client.schedule_new_workflow("retry_call", input={
        "activity": "refuse", "input": {"key": "listed", "raise": "ValueError"}, "interval": 0.2,
        "attempts": 5, "non_retryable": ["ValueError"]})
    state = finished(client, declined, WorkflowStatus.FAILED)
    assert state.failure_details.error_type.endswith("NonRetryableError")
    assert state.failure_details.message.endswith("Activity task #1 ('refuse') failed: card declined")
    state = finished(client, listed, WorkflowStatus.FAILED)
    assert state.failure_details.error_type == "ValueError"
    assert state.failure_details.message.endswith("failed: amount must be positive")
    for instance_id, key in ((declined, "declined"), (listed, "listed")):
        history = client.get_workflow_history(instance_id)
        assert len(of_kind(history, "TaskScheduled")) == 1 and of_kind(history, "TimerCreated") == []
        assert runs(redis_client, key) == [1]


# -- activity timeouts ------------------------------------------------------------------------------

def test_timed_out_attempt_is_retried_and_its_late_result_dropped(client, start_pool, redis_client):
    pool = start_pool(APP, concurrency=4)
    spec = {"activity": "slow_first", "input": {"key": "slow", "sleep": 3}, "timeout": 1,
            "interval": 0.2, "coefficient": 1, "attempts": 3}
    instance_id = client.schedule_new_workflow("timed_call", input=spec)
    no_policy = client.schedule_new_workflow("timed_call", input={
        "activity": "slow_first", "input": {"key": "once", "sleep": 2}, "timeout": 0.5})
    state = finished(client, no_policy, WorkflowStatus.FAILED)
    assert state.failure_details.error_type == "ActivityTimeoutError"
    assert "did not finish within 0.5 s" in state.failure_details.message
    # Attempt 2 (seq 4) completes while attempt 1 (seq 1) still sleeps.
    wait_until(lambda: of_kind(client.get_workflow_history(instance_id), "TaskCompleted"), what="attempt 2")
    wait_until(lambda: b"dropped the result of activity slow_first" in pool.log_path.read_bytes(),
               what="attempt 1's late result to be dropped")
    history = client.get_workflow_history(instance_id)
    first, second = of_kind(history, "TaskScheduled")
    assert (first["attempt"], second["attempt"]) == (1, 2)
    guards = of_kind(history, "TimerCreated", purpose="timeout")
    assert [g["seq"] for g in guards] == [first["seq"] + 1, second["seq"] + 1]
    assert guards[0]["fire_at"] - first["ts"] == 1000
    # Attempt 1 failed when its timeout timer fired: that firing is its recorded failure.
    assert [e["seq"] for e in of_kind(history, "TimerFired")] == [guards[0]["seq"], guards[0]["seq"] + 1]
    assert of_kind(history, "TaskFailed") == []
    assert [e["seq"] for e in of_kind(history, "TaskCompleted")] == [second["seq"]]
    assert redis_client.get("slow:late-returned") == b"1"
    # Attempt 2 finished first, so its timeout timer was disarmed (removed from the timer index).
    disarmed = client.store.get_meta(instance_id).task_key(guards[1]["seq"])
    assert score(redis_client, "timers", f"{instance_id}|{disarmed}") is None
    client.raise_workflow_event(instance_id, "finish")
    assert finished(client, instance_id).output == {"attempt": 2}
    history = client.get_workflow_history(instance_id)
    assert [e["seq"] for e in of_kind(history, "TaskCompleted")] == [second["seq"]]
    assert runs(redis_client, "slow") == [1, 2]


def test_celery_time_limits_fail_the_attempt_and_protect_the_worker(client, start_pool, redis_client):
    start_pool(APP, env={"ORCH_ACTIVITY_SOFT_TIME_LIMIT": "1", "ORCH_ACTIVITY_TIME_LIMIT": "2"})
    soft = client.schedule_new_workflow("plain_call", input={
        "activity": "overrun", "input": {"key": "soft", "sleep": 5}})
    hard = client.schedule_new_workflow("plain_call", input={
        "activity": "overrun", "input": {"key": "hard", "sleep": 5, "stubborn": True}})
    # The types are billiard's (Celery re-exports them as celery.exceptions.*).
    assert finished(client, soft).output["error_type"] == "SoftTimeLimitExceeded"
    output = finished(client, hard).output
    assert output["error_type"] == "TimeLimitExceeded"
    assert "hard time limit" in output["message"]
    assert runs(redis_client, "soft") == [1] and runs(redis_client, "hard") == [1]
    # Both messages get acknowledged (the killed one right after its failure is delivered), so
    # nothing is left for kombu to redeliver and run again.
    wait_until(lambda: redis_client.hlen("unacked") == 0, timeout=10, what="both messages to be acked")
    assert runs(redis_client, "soft") == [1] and runs(redis_client, "hard") == [1]


# -- circuit breaker ------------------------------------------------------------------------------

def test_circuit_opens_after_consecutive_failures_and_retries_wait_for_the_cool_down(client, start_pool, redis_client):
    start_pool(APP, env={"ORCH_CIRCUIT_FAILURE_THRESHOLD": "2", "ORCH_CIRCUIT_COOLDOWN": "3"})
    redis_client.set("dep:down", 1)
    for key in ("a", "b"):  # two instances, one failure each: the breaker counts across instances
        instance_id = client.schedule_new_workflow("plain_call", input={
            "activity": "dependency", "input": {"key": key, "down": "dep:down"}})
        assert finished(client, instance_id).output["error_type"] == "ConnectionError"
    open_until = int(redis_client.hget("orch:circuit:default:dependency", "open_until"))
    redis_client.delete("dep:down")  # the dependency recovers, but the circuit is still open

    fast = client.schedule_new_workflow("plain_call", input={
        "activity": "dependency", "input": {"key": "fast", "down": "dep:down"}})
    refused = finished(client, fast).output
    assert refused["error_type"] == "CircuitOpenError" and refused["retry_after_ms"] > 0
    assert runs(redis_client, "fast") == []  # refused without running

    patient = client.schedule_new_workflow("retry_call", input={
        "activity": "dependency", "input": {"key": "patient", "down": "dep:down"}, "interval": 0.2,
        "coefficient": 1, "attempts": 5})
    assert finished(client, patient).output == "ok"
    history = client.get_workflow_history(patient)
    first, second = of_kind(history, "TaskScheduled")
    [refusal] = of_kind(history, "TaskFailed")
    assert refusal["failure"]["error_type"] == "CircuitOpenError" and refusal["failure"]["retry_after_ms"] > 0
    [backoff] = of_kind(history, "TimerCreated", purpose="retry")
    # The backoff waited out the cool-down (not the policy's 0.2 s), durably, as a timer in history.
    assert backoff["fire_at"] >= open_until and second["ts"] >= open_until
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert runs(redis_client, "patient") == [2]
    assert redis_client.exists("orch:circuit:default:dependency") == 0  # the success closed it


# -- compensation (saga) ----------------------------------------------------------------------------

def test_saga_cancels_completed_bookings_in_reverse_order_when_the_car_fails(client, start_pool, redis_client):
    start_pool("workers.saga")
    failed = client.schedule_new_workflow("book_trip", input={"trip_id": "t1", "fail_car": True})
    booked = client.schedule_new_workflow("book_trip", input={"trip_id": "t2"})
    state = finished(client, failed, WorkflowStatus.FAILED)
    assert state.failure_details.error_type == "NoAvailabilityError"  # bare, as Dapr; qualified kept beside
    assert state.failure_details.qualified_type == "workers.saga.NoAvailabilityError"
    assert state.failure_details.message.endswith("Activity task #3 ('book_car') failed: no car available for trip t1")
    assert state.custom_status == {"compensated": ["hotel-t1", "flight-t1"], "left_behind": []}
    assert redis_client.hgetall("saga:bookings:t1") == {}  # no booking left behind
    history = client.get_workflow_history(failed)
    assert [e["name"] for e in of_kind(history, "TaskScheduled")] == [
        "book_flight", "book_hotel", "book_car", "cancel_hotel", "cancel_flight"]
    assert [e["result"] for e in of_kind(history, "TaskCompleted")][-2:] == ["hotel-t1", "flight-t1"]
    # The happy path keeps all three bookings and compensates nothing.
    assert finished(client, booked).output == {"trip_id": "t2", "bookings": ["flight-t2", "hotel-t2", "car-t2"]}
    assert redis_client.hgetall("saga:bookings:t2") == {b"flight": b"flight-t2", b"hotel": b"hotel-t2", b"car": b"car-t2"}
    assert not [e for e in client.get_workflow_history(booked) if e.get("name", "").startswith("cancel_")]
