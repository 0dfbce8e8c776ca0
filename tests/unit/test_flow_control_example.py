"""The flow-control example (workers/flow_control.py) and the limits' rules, in the test toolkit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator import WorkflowRuntime
from orchestrator.core.flow import FlowPolicy, priority_list, validate_priority
from orchestrator.store.scripts import FlowCode
from orchestrator.testing import WorkflowTestEnvironment
from workers import flow_control


def test_the_example_runs_under_its_limits() -> None:
    with WorkflowTestEnvironment(flow_control.wfr) as env:
        ids = flow_control.start_burst(env.client)
        env.advance(timedelta(minutes=5))  # the rate limit spaces the 20 charges over ~12 s
        for instance_id in ids:
            assert env.state(instance_id).runtime_status.name == "COMPLETED", instance_id
        scopes = {s["scope"]: s for s in env.client.flow_control_status()}
        assert scopes["w:fulfil_order"]["running"] == 0 and scopes["w:fulfil_order"]["waiting"] == 0


def test_waiting_runs_are_pending_with_their_reason_and_start_as_slots_free() -> None:
    wfr = WorkflowRuntime()

    @wfr.workflow(name="slow", concurrency_key=lambda x: x["k"], key_concurrency=1)
    def slow(ctx, x):  # type: ignore[no-untyped-def]
        yield ctx.create_timer(timedelta(seconds=10))
        return x["n"]

    with WorkflowTestEnvironment(wfr) as env:
        first = env.start("slow", input={"k": "a", "n": 1})
        second = env.start("slow", input={"k": "a", "n": 2})
        other = env.start("slow", input={"k": "b", "n": 3})
        assert env.state(first).runtime_status.name == "RUNNING"
        assert env.state(other).runtime_status.name == "RUNNING"  # another key is not held up
        waiting = env.client.store.get_meta(second)
        assert waiting.status == "PENDING" and "key 'a'" in (waiting.flow_wait or "")
        env.client.terminate_workflow(first)  # a finished run frees its slot at once
        assert env.state(second).runtime_status.name == "RUNNING"
        assert env.run_until_complete(second).output == 2


def test_policy_rules_name_the_problem() -> None:
    with pytest.raises(ValueError, match="key_concurrency needs a concurrency_key"):
        FlowPolicy(key_concurrency=2)
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        FlowPolicy(concurrency=0)
    with pytest.raises(ValueError, match="from 0 .first. to 9 .last."):
        validate_priority(10)
    assert priority_list("orchestrator.default", 0) == "orchestrator.default"
    assert priority_list("orchestrator.default", 7) == "orchestrator.default\x06\x167"


def test_a_queued_run_suspended_and_resumed_still_waits_for_its_slot() -> None:
    wfr = WorkflowRuntime()

    @wfr.workflow(name="one_at_a_time", concurrency=1)
    def one_at_a_time(ctx, n):  # type: ignore[no-untyped-def]
        yield ctx.create_timer(timedelta(seconds=10))
        return n

    with WorkflowTestEnvironment(wfr) as env:
        first = env.start("one_at_a_time", input=1)
        queued = env.start("one_at_a_time", input=2)
        env.client.pause_workflow(queued)
        env.client.resume_workflow(queued)
        # Its code has not run (no timer yet): it still waits for the slot, suspended or not.
        assert not [e for e in env.history(queued) if e["kind"] == "TimerCreated"]
        assert env.state(first).runtime_status.name == "RUNNING"
        assert env.run_until_complete(first).output == 1
        assert env.run_until_complete(queued).output == 2


def test_a_workflow_rate_limit_spaces_starts_in_the_test_environment() -> None:
    wfr = WorkflowRuntime()

    @wfr.workflow(name="report", rate=2, per=60)
    def report(ctx, n):  # type: ignore[no-untyped-def]
        return n
        yield  # a generator

    with WorkflowTestEnvironment(wfr) as env:
        ids = [env.start("report", input=i) for i in range(5)]
        assert [env.state(i).runtime_status.name for i in ids] == ["COMPLETED"] * 2 + ["PENDING"] * 3
        assert "rate limit" in (env.client.store.get_meta(ids[2]).flow_wait or "")
        env.advance(timedelta(minutes=2))
        states = [env.state(i) for i in ids]
        assert all(s.runtime_status.name == "COMPLETED" for s in states)
        started = sorted(next(e["ts"] for e in env.history(i) if e["kind"] == "StepStarted") for i in ids)
        # 2 at once (the full bucket), then one every 30 s: never more than 2 in a minute after that.
        assert started[4] - started[2] >= 60_000 - 5


def test_the_sweep_frees_a_slot_whose_run_ended_without_giving_it_back() -> None:
    wfr = WorkflowRuntime()

    @wfr.workflow(name="solo", concurrency=1)
    def solo(ctx, n):  # type: ignore[no-untyped-def]
        yield ctx.create_timer(timedelta(seconds=1))
        return n

    with WorkflowTestEnvironment(wfr) as env:
        from orchestrator.store.flow import FlowStore

        flow = FlowStore.of(env.store)
        # A crash between a run's last commit and its release leaves its slot taken: simulate one.
        code, _ = flow.acquire("w:solo", "gone-instance", "", "instance", env.now_ms(), global_limit=1,
                               key_limit=None, work=b"")
        assert code == FlowCode.GRANTED
        waiting = env.start("solo", input=1)
        assert env.state(waiting).runtime_status.name == "PENDING"
        env.advance(timedelta(minutes=1))
        engine = env.publisher.engines["default"]
        assert engine.flow.sweep(engine.duties.stale_after_ms) == 1  # the missing instance's slot
        assert env.run_until_complete(waiting).output == 1


def test_slots_round_robin_between_keys_and_copies_of_held_work() -> None:
    from orchestrator.store.flow import FlowStore
    from orchestrator.store.redis_store import RedisStore
    from orchestrator.testing import fake_redis

    flow = FlowStore.of(RedisStore(fake_redis()))

    def take(member: str, key: str, who: str = "p1") -> FlowCode:
        return flow.acquire("a:x", member, key, who, 1, global_limit=2, key_limit=2, work=member.encode())[0]

    assert [take("a1", "a"), take("a2", "a")] == [FlowCode.GRANTED, FlowCode.GRANTED]
    assert [take(m, k) for m, k in (("a3", "a"), ("a4", "a"), ("b1", "b"), ("c1", "c"))] == [FlowCode.QUEUED] * 4
    # Oldest first within a key, but round-robin between keys: a3, then b1, then c1 (not a4).
    granted = [flow.release("a:x", "a1", 2)[0][0], flow.release("a:x", "a2", 2)[0][0]]
    granted.append(flow.release("a:x", "a3", 2)[0][0])
    assert granted == ["a3", "b1", "c1"]
    # A copy of work another process holds: told who holds it; the holder's release frees it, a copy's does not.
    assert flow.acquire("a:x", "b1", "b", "p2", 3, global_limit=2, key_limit=2, work=b"")[0] == FlowCode.GRANTED
    assert flow.acquire("a:x", "b1", "b", "p3", 3, global_limit=2, key_limit=2, work=b"") == (FlowCode.HELD, "p2")
    assert flow.release("a:x", "b1", 4, "p3") == []
    assert flow.take_over("a:x", "b1", "p2", "p3", 5)
    assert [m for m, _ in flow.release("a:x", "b1", 6, "p3")] == ["a4"]
