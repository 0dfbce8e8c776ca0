"""Durable timers, external events, scheduled starts and the seed's order-approval workflow.

Real redis-server, real worker pool processes (``orchestrator worker``), real SIGKILL. Seven-day
timers are skipped with ``orchestrator.testing.skip_timers``; short real timers run in real time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator import InstanceFinishedError, InstanceNotFoundError, WorkflowStatus
from orchestrator.testing import pending_timers, skip_timers, wait_for_timers
from tests.conftest import store_env
from tests.support.store_keys import shard_total
from tests.support.waiting import wait_until
from workers.order_approval import activities_run, request_escalation_workflow

SEED = "workers.order_approval"
APP = "tests.apps.approval_app"
SEVEN_DAYS_MS = 7 * 86400 * 1000


def completed(client, instance_id, timeout=60):
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
    assert state.runtime_status == WorkflowStatus.COMPLETED, (state.runtime_status, state.failure_details)
    return state.output


def kinds(client, instance_id, kind):
    return [e for e in client.get_workflow_history(instance_id) if e["kind"] == kind]


def start_order(client, amount, instance_id, as_json=False):
    order = {"id": instance_id, "amount": amount}
    payload = json.dumps(order) if as_json else order  # the seed accepts both
    client.schedule_new_workflow(request_escalation_workflow, input=payload, instance_id=instance_id)
    return order


# -- the seed's three paths ----------------------------------------------------------------------
def test_seed_small_order_is_auto_approved(client, start_pool):
    start_pool(SEED)
    order = start_order(client, 500, "order-500", as_json=True)
    assert completed(client, "order-500") is None  # the seed's workflow returns nothing
    assert activities_run(client.get_workflow_history("order-500")) == [
        {"activity": "auto_approve", "input": order, "result": {"decision": "auto-approved", "order": order}}]
    assert kinds(client, "order-500", "TimerCreated") == []


def test_seed_large_order_gets_human_approval_data(client, start_pool):
    start_pool(SEED)
    start_order(client, 5000, "order-5000")
    assert len(wait_for_timers(client, "order-5000")) == 1
    [created] = kinds(client, "order-5000", "TimerCreated")
    assert created["fire_at"] - created["ts"] == SEVEN_DAYS_MS
    assert client.get_workflow_state("order-5000").runtime_status == WorkflowStatus.RUNNING
    approval = {"approved": True, "approver": "alice", "note": "ok for 5000"}
    client.raise_workflow_event("order-5000", "human_approval", data=approval)
    completed(client, "order-5000")
    assert activities_run(client.get_workflow_history("order-5000")) == [
        {"activity": "process_approval", "input": approval, "result": {"decision": "processed", "approval": approval}}]
    assert kinds(client, "order-5000", "TimerFired") == []
    assert pending_timers(client, "order-5000") == []  # the losing 7-day timer is gone with the instance


def test_seed_large_order_times_out_when_seven_days_are_skipped(client, start_pool):
    start_pool(SEED)
    order = start_order(client, 5000, "order-late", as_json=True)
    wait_for_timers(client, "order-late")
    assert skip_timers(client, "order-late", until=timedelta(days=6)) == 0  # not due within 6 days
    assert skip_timers(client, "order-late", until=timedelta(days=7, seconds=5)) == 1
    completed(client, "order-late")
    assert activities_run(client.get_workflow_history("order-late")) == [
        {"activity": "handle_timeout", "input": order, "result": {"decision": "timed out", "order": order}}]
    [created] = kinds(client, "order-late", "TimerCreated")
    assert [e["seq"] for e in kinds(client, "order-late", "TimerFired")] == [created["seq"]]


def test_event_names_match_case_insensitively_as_in_dapr(client, start_pool):
    start_pool(SEED)
    start_order(client, 5000, "order-case")
    wait_for_timers(client, "order-case")
    client.raise_workflow_event("order-case", "Human_Approval", data={"approver": "bob"})
    completed(client, "order-case")
    assert [(a["activity"], a["input"]) for a in activities_run(client.get_workflow_history("order-case"))] == [
        ("process_approval", {"approver": "bob"})]
    [raised] = kinds(client, "order-case", "EventRaised")
    assert raised["name"] == "Human_Approval"  # history keeps the name as raised


def test_readme_commands_run_the_approval_path(client, start_pool, redis_server):
    start_pool(SEED)
    env = {**os.environ, **store_env(redis_server)}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", SEED, *args], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run("start", "5000", "--id", "order-1").strip() == "order-1"
    wait_for_timers(client, "order-1")
    run("approve", "order-1", "--by", "alice")
    report = json.loads(run("status", "order-1", "--wait", "30"))
    assert report["status"] == "COMPLETED"
    assert [(a["activity"], a["input"]) for a in report["activities"]] == [
        ("process_approval", {"approved": True, "approver": "alice"})]


# -- crashes -------------------------------------------------------------------------------------
def test_pool_killed_while_orders_wait_events_and_overdue_timer_are_delivered_after_restart(
        client, start_pool, redis_client):
    pool = start_pool(SEED)
    orders = {iid: start_order(client, 5000, iid) for iid in ("wait-after", "wait-during", "wait-timeout")}
    for iid in orders:
        wait_for_timers(client, iid)
    pool.kill()
    # All pools are down: an event arrives, and seven days pass for one order.
    client.raise_workflow_event("wait-during", "human_approval", data={"approver": "during outage"})
    assert skip_timers(client, "wait-timeout") == 1
    time.sleep(0.5)
    assert len(pending_timers(client, "wait-timeout")) == 1  # nobody fired it while all pools were down
    assert client.get_workflow_state("wait-during").runtime_status == WorkflowStatus.RUNNING
    start_pool(SEED)
    client.raise_workflow_event("wait-after", "human_approval", data={"approver": "after restart"})
    for iid in orders:
        completed(client, iid)
    ran = {iid: activities_run(client.get_workflow_history(iid)) for iid in orders}
    assert [(a["activity"], a["input"]) for a in ran["wait-after"]] == [("process_approval", {"approver": "after restart"})]
    assert [(a["activity"], a["input"]) for a in ran["wait-during"]] == [("process_approval", {"approver": "during outage"})]
    assert [(a["activity"], a["input"]) for a in ran["wait-timeout"]] == [("handle_timeout", orders["wait-timeout"])]
    [created] = kinds(client, "wait-timeout", "TimerCreated")
    assert [e["seq"] for e in kinds(client, "wait-timeout", "TimerFired")] == [created["seq"]]
    assert shard_total(redis_client, "timers") == 0


def test_real_timer_due_during_outage_of_every_process_fires_once_after_restart(
        client, start_pool, redis_server):
    pool = start_pool(APP)
    iid = client.schedule_new_workflow("nap", input=1.0)
    [timer] = wait_for_timers(client, iid)
    pool.kill()
    redis_server.kill()  # SIGKILL Redis too: the timer index must come back from the AOF
    time.sleep(max(0.0, (timer.fire_at - datetime.now(UTC)).total_seconds()) + 0.5)
    redis_server.start()
    assert pending_timers(client, iid) == [timer]  # overdue, not fired: nobody was polling
    start_pool(APP)
    assert completed(client, iid) == "woke"
    [created] = kinds(client, iid, "TimerCreated")
    fired = kinds(client, iid, "TimerFired")
    assert [e["seq"] for e in fired] == [created["seq"]]
    assert fired[0]["ts"] >= created["fire_at"]  # never early


# -- events --------------------------------------------------------------------------------------
def test_raising_to_unknown_or_finished_instance_is_a_clear_error(client, start_pool):
    start_pool(SEED)
    with pytest.raises(InstanceNotFoundError, match=r"'human_approval'.*'no-such-order'.*no such instance"):
        client.raise_workflow_event("no-such-order", "human_approval", data={"approved": True})
    start_order(client, 10, "done-order")
    completed(client, "done-order")
    client.raise_workflow_event("done-order", "human_approval", data={"approved": True})  # discarded, as Dapr's
    with pytest.raises(InstanceFinishedError, match=r"'human_approval'.*'done-order'.*already finished"):
        client.strict().raise_workflow_event("done-order", "human_approval", data={"approved": True})
    start_order(client, 5000, "cancelled-order")
    wait_for_timers(client, "cancelled-order")
    client.terminate_workflow("cancelled-order")
    client.wait_for_workflow_completion("cancelled-order", timeout_in_seconds=30)
    with pytest.raises(InstanceFinishedError, match="already finished"):
        client.strict().raise_workflow_event("cancelled-order", "human_approval")
    assert kinds(client, "done-order", "EventRaised") == []


def test_event_raised_before_the_wait_is_not_lost(client, start_pool):
    start_pool(APP)
    iid = client.schedule_new_workflow("listen_after_timer", input=1.5)
    wait_for_timers(client, iid)
    client.raise_workflow_event(iid, "go", data="early")  # the workflow is still on its timer
    assert completed(client, iid) == "early"
    history = [e["kind"] for e in client.get_workflow_history(iid)]
    assert history.index("EventRaised") < history.index("TimerFired")  # it arrived before the wait
    # Raised to an instance that has not even started yet (scheduled start): kept too.
    later = client.schedule_new_workflow("collect", input=1,
                                         start_at=datetime.now(UTC) + timedelta(seconds=1))
    assert client.get_workflow_state(later).runtime_status == WorkflowStatus.PENDING
    client.raise_workflow_event(later, "item", data="before start")
    assert completed(client, later) == ["before start"]


def test_events_of_one_name_are_taken_in_arrival_order(client, start_pool):
    start_pool(APP)
    one_by_one = client.schedule_new_workflow("collect", input=5)
    at_once = client.schedule_new_workflow("collect_all", input=3)
    for i in range(5):  # back to back: some buffered, some waking a wait
        client.raise_workflow_event(one_by_one, "item", data=i)
    for name in ("first", "second", "third"):
        client.raise_workflow_event(at_once, "item", data=name)
    assert completed(client, one_by_one) == [0, 1, 2, 3, 4]
    assert completed(client, at_once) == ["first", "second", "third"]
    # Waiting between events: the second wait takes the second event.
    paced = client.schedule_new_workflow("collect", input=2)
    client.raise_workflow_event(paced, "item", data="a")
    wait_until(lambda: kinds(client, paced, "EventRaised"), timeout=20, what="the first event in the history")
    client.raise_workflow_event(paced, "item", data="b")
    assert completed(client, paced) == ["a", "b"]


def test_when_any_losers_do_not_disturb_later_waits(client, start_pool):
    start_pool(APP, concurrency=2)
    event_wins = client.schedule_new_workflow("mixed_race")
    client.raise_workflow_event(event_wins, "go", data=1)
    client.raise_workflow_event(event_wins, "go", data=2)
    timer_wins = client.schedule_new_workflow("mixed_race")
    wait_until(lambda: kinds(client, timer_wins, "TimerFired"), timeout=20,
               what="the timer to win the race")  # the race is over, the event wait lost
    client.raise_workflow_event(timer_wins, "go", data="late")
    assert completed(client, event_wins) == {"first_won": True, "first": 1, "second": 2, "after": "a"}
    assert completed(client, timer_wins) == {"first_won": False, "first": None, "second": "late", "after": "a"}
    for iid in (event_wins, timer_wins):
        history = client.get_workflow_history(iid)
        assert Counter(e["seq"] for e in history if e["kind"] == "TimerFired") == {
            e["seq"]: 1 for e in history if e["kind"] == "TimerCreated"}


# -- scheduled start -----------------------------------------------------------------------------
def test_scheduled_start_is_durable_across_an_outage(client, start_pool):
    pool = start_pool(APP)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    before_kill = client.schedule_new_workflow("nap", input=0.1, start_at=soon)
    pool.kill()  # every pool is down from here on
    during = datetime.now(UTC) + timedelta(seconds=0.5)
    while_down = client.schedule_new_workflow("nap", input=0.1, start_at=during)
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)
    for iid in (before_kill, while_down):
        assert client.get_workflow_state(iid).runtime_status == WorkflowStatus.PENDING
    start_pool(APP)
    for iid, start_at in ((before_kill, soon), (while_down, during)):
        assert completed(client, iid) == "woke"
        first_step = kinds(client, iid, "StepStarted")[0]
        assert first_step["ts"] >= int(start_at.timestamp() * 1000)  # never before its time


# -- many timers, many pollers -------------------------------------------------------------------
def test_thousand_concurrent_timers_each_fire_once_with_two_pools_polling(client, start_pool, redis_client):
    start_pool(APP, concurrency=2)
    start_pool(APP, concurrency=2)
    iid = client.schedule_new_workflow("many_timers", input={"n": 1000, "spread": 2})
    assert completed(client, iid, timeout=120) == 1000
    history = client.get_workflow_history(iid)
    created = [e["seq"] for e in history if e["kind"] == "TimerCreated"]
    fired = Counter(e["seq"] for e in history if e["kind"] == "TimerFired")
    assert len(created) == 1000 and fired == {seq: 1 for seq in created}
    due = {e["seq"]: e["fire_at"] for e in history if e["kind"] == "TimerCreated"}
    assert all(e["ts"] >= due[e["seq"]] for e in history if e["kind"] == "TimerFired")  # none early
    assert sum(e["kind"] == "StepStarted" for e in history) <= 10  # fan-in: a few steps, not 1000
    assert shard_total(redis_client, "timers") == 0


def test_racing_pollers_fire_each_due_timer_exactly_once(client, redis_server):
    """Eight pollers at once over 1,000 due timers: every timer is delivered once, none twice."""
    from orchestrator.core.registry import Registry
    from orchestrator.store.redis_store import RedisStore
    from orchestrator.worker.engine import Engine
    from tests.apps.approval_app import many_timers

    class Steps:
        def __init__(self):
            self.sent = []

        def send_step(self, instance_id, app_id):
            self.sent.append(instance_id)

        def send_activity(self, record, app_id):
            raise AssertionError("no activities here")

    registry = Registry()
    registry.add_workflow(many_timers, "many_timers")
    engines = [Engine(RedisStore.from_url(redis_server.url), registry, Steps(), "default", inline_steps=False)
               for _ in range(8)]
    engines[0].store.register_workflows("default", ["many_timers"])
    iid = client.schedule_new_workflow("many_timers", input={"n": 1000, "spread": 2})
    engines[0].run_step(iid)
    assert len(wait_for_timers(client, iid, count=1000)) == 1000
    assert skip_timers(client, iid) == 1000
    barrier = threading.Barrier(len(engines))
    fired = [0] * len(engines)

    def poll(i):
        barrier.wait()
        while pending_timers(client, iid):
            fired[i] += engines[i].fire_due_timers(limit=100)

    threads = [threading.Thread(target=poll, args=(i,)) for i in range(len(engines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(fired) == 1000
    assert [e.publisher.sent for e in engines if e.publisher.sent] == [[iid]]  # one wake-up, by one poller
    inbox = engines[0].store.load(iid).inbox
    assert sorted(entry.event.seq for entry in inbox) == list(range(1, 1001))
    engines[0].run_step(iid)
    assert client.get_workflow_state(iid).output == 1000
