"""Concurrency: duplicated messages, racing steps, racing deliveries and repeated events are harmless.

Real redis-server; real worker pools where Celery is part of the story, in-test engines on threads
where the race itself must be forced. Covered elsewhere (docs/bad-input.md lists them too): two
workers running steps of one instance (``test_core_engine.py::
test_racing_engines_on_one_instance_never_duplicate_history``), two steps computed from one version
(``test_core_engine.py::test_two_steps_computed_from_one_version_commit_exactly_once``) and one due
timer seen by several pollers (``test_timers_events.py::
test_racing_pollers_fire_each_due_timer_exactly_once``).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator import InstanceFinishedError, WorkflowStatus, when_all
from orchestrator.core.history import StepStarted, TaskScheduled
from orchestrator.core.registry import Registry
from orchestrator.http import create_app
from orchestrator.store.redis_store import RedisStore
from orchestrator.worker.engine import Engine
from orchestrator.worker.recovery import activity_record
from tests.apps.reliability_app import executions
from tests.support.defaults import API_CLIENT
from tests.support.store_keys import shard_entries, shard_total
from tests.support.waiting import wait_until

APP = "tests.apps.reliability_app"


def completed(client: Any, instance_id: str, timeout: float = 30) -> Any:
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
    assert state.runtime_status == WorkflowStatus.COMPLETED, (state.runtime_status, state.failure_details)
    return state.output


def kinds(client: Any, instance_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in client.get_workflow_history(instance_id) if e["kind"] == kind]


# -- duplicated Celery messages -------------------------------------------------------------------
def test_the_same_activity_message_delivered_again_records_one_completion(client, start_pool, redis_client):
    # Every attempt with its own message (no eager activities), so that there is a message to copy.
    pool = start_pool(APP, concurrency=2, env={"ORCH_EAGER_ACTIVITY_HOPS": "0"})
    iid = client.schedule_new_workflow("rel_one", input={"value": 7, "sleep": 1.0}, instance_id="dup-msg")
    wait_until(lambda: executions(redis_client, iid, 1) == 1, timeout=20, what="the first copy to run")
    meta = client.store.get_meta(iid)
    [scheduled] = [e for e in client.store.get_history(iid) if isinstance(e, TaskScheduled)]
    record = activity_record(meta, scheduled)  # byte for byte the message the step published
    client._publisher.send_activity(record, "default")  # a second copy, while the first runs
    assert completed(client, iid) == 7
    done = f"Task orchestrator.activity[{iid}|{meta.task_key(1)}|1] succeeded"
    wait_until(lambda: pool.log_path.read_text().count(done) == 2, timeout=20, what="the second copy to be handled too")
    assert "is running in live process" in pool.log_path.read_text()  # ...and skipped: the attempt is claimed
    client._publisher.send_activity(record, "default")  # a third copy, after the result is in
    wait_until(lambda: f"activity rel_echo of {iid} is no longer awaited; skipped" in pool.log_path.read_text(),
               timeout=20, what="the late copy to be skipped")
    # The copy that arrived while the first ran found it claimed by a live process; the late one found
    # it done: the activity ran once.
    assert executions(redis_client, iid, 1) == 1
    assert [e["seq"] for e in kinds(client, iid, "TaskCompleted")] == [1]
    assert shard_total(redis_client, "activities") == 0


# -- two engines racing on one instance ---------------------------------------------------------------
class Capture:
    """A publisher that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.activities: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send_step(self, instance_id: str, app_id: str) -> None:
        with self.lock:
            self.steps.append(instance_id)

    def send_activity(self, record: dict[str, Any], app_id: str) -> None:
        with self.lock:
            self.activities.append(record)


def rounds_workflow(ctx: Any, rounds: int):
    total = 0
    for r in range(rounds):
        parts = yield when_all([ctx.call_activity("race_add", input=[r, j]) for j in range(3)])
        total += sum(parts)
    return total


def race_add(ctx: Any, pair: list) -> int:
    return pair[0] * 10 + pair[1]


def on_threads(*calls: Any) -> None:
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Any) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_two_engines_racing_run_step_and_deliveries_commit_each_version_once(client, redis_server):
    registry = Registry()
    registry.add_workflow(rounds_workflow, "race_rounds")
    registry.add_activity(race_add, "race_add")
    engines = [Engine(RedisStore.from_url(redis_server.url), registry, Capture(), "default", inline_steps=False)
               for _ in range(2)]
    engines[0].store.register_workflows("default", ["race_rounds"])
    rounds = 12
    iid = client.schedule_new_workflow("race_rounds", input=rounds, instance_id="race-engines")
    dispatched: list[dict[str, Any]] = []
    while True:
        on_threads(*(lambda e=e: e.run_step(iid) for e in engines))  # both step the same instance at once
        batch = [rec for e in engines for rec in e.publisher.activities]
        for e in engines:
            e.publisher.activities.clear()
        dispatched.extend(batch)
        if not batch:
            break
        assert len(batch) == 3  # one round's fan-out, dispatched by exactly one of the two
        steps_before = sum(len(e.publisher.steps) for e in engines)
        # The three results arrive at once, through both engines: exactly one of them wakes the step.
        on_threads(*(lambda rec=rec, e=engines[i % 2]: e.run_activity(rec) for i, rec in enumerate(batch)))
        assert sum(len(e.publisher.steps) for e in engines) == steps_before + 1
    assert completed(client, iid) == sum(r * 10 * 3 + 3 for r in range(rounds))
    assert Counter(rec["seq"] for rec in dispatched) == {seq: 1 for seq in range(1, 3 * rounds + 1)}
    history = client.get_workflow_history(iid)
    assert Counter(e["seq"] for e in history if e["kind"] == "TaskScheduled") == {s: 1 for s in range(1, 3 * rounds + 1)}
    assert Counter(e["seq"] for e in history if e["kind"] == "TaskCompleted") == {s: 1 for s in range(1, 3 * rounds + 1)}
    entries = redis_server_ids(client.store, iid)
    version = client.store.get_meta(iid).version
    assert entries == [f"{v}-1" for v in range(1, version + 1)]  # one entry per version, none twice
    assert sum(isinstance(e, StepStarted) for e in client.store.get_history(iid)) == version


def redis_server_ids(store: RedisStore, instance_id: str) -> list[str]:
    return [eid.decode() for eid, _ in store.redis.xrange(store.keys.instance(instance_id).hist)]


# -- events raised twice with one idempotency key ----------------------------------------------------
def test_an_event_raised_twice_with_one_idempotency_key_is_recorded_once(client, start_pool):
    start_pool(APP)
    iid = client.schedule_new_workflow("rel_collect", input=2, instance_id="idem-1")
    client.raise_workflow_event(iid, "go", data="first", idempotency_key="k-1")
    client.raise_workflow_event(iid, "go", data="first, retried", idempotency_key="k-1")  # dropped
    # Eight callers retry the same raise at the same moment: one is stored, none fails.
    on_threads(*(lambda: client.raise_workflow_event(iid, "go", data="second", idempotency_key="k-2")
                 for _ in range(8)))
    assert completed(client, iid) == ["first", "second"]
    assert [e["data"] for e in kinds(client, iid, "EventRaised")] == ["first", "second"]
    # Once finished, a retry of a raise it received still succeeds; a new event is refused.
    client.raise_workflow_event(iid, "go", data="first", idempotency_key="k-1")
    with pytest.raises(InstanceFinishedError, match="idem-1"):  # setting strict_events (Dapr's: discarded)
        client.strict().raise_workflow_event(iid, "go", data="third", idempotency_key="k-3")
    with pytest.raises(ValueError, match="idempotency_key"):
        client.raise_workflow_event(iid, "go", idempotency_key="")
    # Purge forgets the keys with the instance.
    client.purge_workflow(iid)
    assert not client.store.redis.exists(client.store.keys.instance(iid).ekeys)


def test_events_without_a_key_or_with_different_keys_are_all_kept(client, start_pool):
    start_pool(APP)
    iid = client.schedule_new_workflow("rel_collect", input=3, instance_id="idem-2")
    client.raise_workflow_event(iid, "go", data=1)
    client.raise_workflow_event(iid, "go", data=1)  # no key: a second, distinct event
    client.raise_workflow_event(iid, "go", data=2, idempotency_key="other")
    assert completed(client, iid) == [1, 1, 2]


def test_http_raise_event_honours_the_idempotency_key_header(client, start_pool):
    start_pool(APP)
    iid = client.schedule_new_workflow("rel_collect", input=2, instance_id="idem-http")
    with TestClient(create_app(client.settings, client), **API_CLIENT) as http:
        url = f"/v1.0/workflows/dapr/{iid}/raiseEvent/go"
        for _ in range(3):
            assert http.post(url, json="a", headers={"Idempotency-Key": "order-7-go"}).status_code == 202
        assert http.post(url, json="b").status_code == 202
        assert completed(client, iid) == ["a", "b"]
        # The instance has finished: a retried raise is still accepted, a new one is a 409.
        assert http.post(url, json="a", headers={"Idempotency-Key": "order-7-go"}).status_code == 202
        assert http.post(url, json="c", headers={"Idempotency-Key": "new"}).status_code == 409


# -- a message lost between a worker's fetch and its ack record -----------------------------------------
def test_an_activity_message_lost_before_any_worker_ran_it_is_published_again(client, start_pool, redis_server,
                                                                               redis_client):
    """Kombu pops a message (BRPOP) before it records it as unacknowledged: a worker SIGKILLed in between
    loses it for good. Here the step commits and its activity message is simply never sent."""
    from tests.apps.reliability_app import wfr

    lost = Capture()
    engine = Engine(RedisStore.from_url(redis_server.url), wfr.registry, lost, "default", inline_steps=False)
    engine.store.register_workflows("default", ["rel_one"])
    iid = client.schedule_new_workflow("rel_one", input={"value": "found"}, instance_id="lost-message")
    engine.run_step(iid)
    key = client.store.get_meta(iid).task_key(1)
    assert len(lost.activities) == 1 and shard_entries(redis_client, "activities") == [f"{iid}|{key}".encode()]
    pool = start_pool(APP)  # its sweeper finds it never taken while the queue is empty
    assert completed(client, iid) == "found"
    assert f"of {iid} was never taken in 15 s while its queue is empty (lost); publishing it again" in pool.log_path.read_text()
    assert executions(redis_client, iid, 1) == 1
    assert [e["seq"] for e in kinds(client, iid, "TaskCompleted")] == [1]
    assert shard_total(redis_client, "activities") == 0
