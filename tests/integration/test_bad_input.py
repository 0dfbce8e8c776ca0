"""The bad-input catalogue (docs/bad-input.md): every row answers a clear error naming the problem,
and nothing already recorded is lost or corrupted.

One private redis-server and one real worker pool (``tests.apps.reliability_app``, payload limit
64 KiB so oversized values stay cheap) serve most tests; the Redis-outage rows start their own.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
import redis

from orchestrator import (
    InstanceAlreadyExistsError,
    InstanceFinishedError,
    InstanceNotFoundError,
    InstanceRunningError,
    PayloadError,
    RedisUnavailableError,
    RetryPolicy,
    Settings,
    WorkflowClient,
    WorkflowNotRegisteredError,
    WorkflowStatus,
)
from orchestrator.core.registry import Registry
from orchestrator.store.keys import KeySchema
from orchestrator.store.redis_store import RedisStore
from orchestrator.worker.engine import Engine
from tests.apps.reliability_app import executions
from tests.conftest import ROOT, Pool
from tests.support.redis_proc import EmbeddedRedis, free_port, start_redis
from tests.support.store_keys import index_total, key, score
from tests.support.waiting import wait_until

APP = "tests.apps.reliability_app"
LIMIT = 64 * 1024
BIG = LIMIT + 100


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    tmp = tmp_path_factory.mktemp("bad-input")
    server = start_redis(tmp)
    pool = Pool(APP, server.url, "default", 2, tmp / "pool.log", {"ORCH_MAX_PAYLOAD_BYTES": str(LIMIT)})
    try:
        pool.start().wait_ready()
        client = WorkflowClient(settings=Settings(redis_url=server.url, max_payload_bytes=LIMIT))
        yield SimpleNamespace(client=client, pool=pool, redis=redis.Redis.from_url(server.url), url=server.url)
    finally:
        pool.kill()
        server.stop()


def finished(client: WorkflowClient, instance_id: str, status: WorkflowStatus = WorkflowStatus.COMPLETED) -> Any:
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
    assert state.runtime_status == status, (state.runtime_status, state.failure_details)
    return state


KEYS = KeySchema("orch")  # the default prefix and shard count, as the stack runs them


def raw_history(r: redis.Redis, instance_id: str) -> list[Any]:
    return r.xrange(KEYS.instance(instance_id).hist)


# -- names ----------------------------------------------------------------------------------------------
def test_unknown_workflow_name_is_refused_at_start(stack):
    before = index_total(stack.redis)
    with pytest.raises(WorkflowNotRegisteredError, match="'no_such_workflow'.*orchestrator worker MODULE"):
        stack.client.strict().schedule_new_workflow("no_such_workflow", input=1)  # strict_start (Dapr's queues it)
    assert index_total(stack.redis) == before  # nothing half-created


def test_unknown_activity_name_fails_the_call_in_the_workflow(stack):
    iid = stack.client.schedule_new_workflow("rel_call", input={"activity": "no_such_activity"})
    assert finished(stack.client, iid).output == {
        "error_type": "ActivityNotRegisteredError",
        "message": "activity 'no_such_activity' is not registered in app 'default'"}


def test_a_child_workflow_name_no_pool_registers_waits_visibly(stack):
    c = stack.client
    parent = c.schedule_new_workflow("rel_child_named", input="no_such_child", instance_id="orphan-parent")
    wait_until(lambda: c.get_workflow_state(f"{parent}:1") is not None, timeout=20, what="the child instance to exist")
    time.sleep(2.5)  # a sweep later (stale_after is 2 s here): still waiting, neither lost nor failed
    assert c.get_workflow_state(f"{parent}:1").runtime_status == WorkflowStatus.PENDING
    assert c.get_workflow_state(parent).runtime_status == WorkflowStatus.RUNNING
    [call] = c.get_pending_calls(parent)
    assert (call["kind"], call["name"]) == ("child_workflow", "no_such_child")
    _worker_still_runs_workflows(stack)
    c.terminate_workflow(parent)  # recursive: the waiting child ends too
    assert finished(c, f"{parent}:1", WorkflowStatus.TERMINATED)


# -- values that are not JSON ------------------------------------------------------------------------
def test_non_json_input_event_data_and_terminate_output_are_refused_at_the_call(stack):
    c = stack.client
    with pytest.raises(PayloadError, match=r"input of workflow 'rel_one'\['value'\] is a builtins.set"):
        c.schedule_new_workflow("rel_one", input={"value": {1, 2}})
    iid = c.schedule_new_workflow("rel_collect", input=1)
    with pytest.raises(PayloadError, match=r"data of event 'go'\['when'\] is a datetime.timedelta"):
        c.raise_workflow_event(iid, "go", data={"when": timedelta(1)})
    with pytest.raises(PayloadError, match="terminate output is nan"):
        c.terminate_workflow(iid, output=float("nan"))
    c.raise_workflow_event(iid, "go", data="ok")  # the refused calls left the instance as it was
    assert finished(c, iid).output == ["ok"]


def test_non_json_values_made_by_workflow_and_activity_code_fail_naming_them(stack):
    c = stack.client
    iid = c.schedule_new_workflow("rel_call", input={"activity": "rel_set"})
    out = finished(c, iid).output
    assert out["error_type"] == "PayloadError"  # the bare class name, as Dapr records it
    assert "output of activity 'rel_set' is a builtins.set" in out["message"]
    iid = c.schedule_new_workflow("rel_return_set")
    failure = finished(c, iid, WorkflowStatus.FAILED).failure_details
    assert (failure.error_type, failure.qualified_type) == ("PayloadError", "orchestrator.core.errors.PayloadError")
    assert "output of workflow 'rel_return_set' is a builtins.set" in failure.message
    assert [e["kind"] for e in c.get_workflow_history(iid)].count("TaskCompleted") == 1  # the result is kept
    iid = c.schedule_new_workflow("rel_set_input")
    failure = finished(c, iid, WorkflowStatus.FAILED).failure_details
    assert "input of activity 'rel_echo'['value'] is a builtins.set" in failure.message
    assert not [e for e in c.get_workflow_history(iid) if e["kind"] == "TaskScheduled"]


# -- payloads over the limit -------------------------------------------------------------------------
def test_oversized_client_payloads_are_refused_naming_size_and_limit(stack):
    c = stack.client
    with pytest.raises(PayloadError, match=rf"input of workflow 'rel_one' is \d+ bytes, over the limit of {LIMIT} "
                                           r"\(setting max_payload_bytes\)"):
        c.schedule_new_workflow("rel_one", input={"value": "x" * BIG})
    iid = c.schedule_new_workflow("rel_collect", input=1)
    with pytest.raises(PayloadError, match=rf"data of event 'go' is \d+ bytes, over the limit of {LIMIT}"):
        c.raise_workflow_event(iid, "go", data="x" * BIG)
    c.terminate_workflow(iid)


def test_oversized_activity_output_fails_the_attempt_with_payload_error(stack):
    iid = stack.client.schedule_new_workflow("rel_call", input={"activity": "rel_big", "input": BIG})
    out = finished(stack.client, iid).output
    assert out["error_type"] == "PayloadTooLargeError"
    size = len(msgpack.packb("x" * BIG))
    assert out["message"].startswith(f"output of activity 'rel_big' is {size} bytes, over the limit of {LIMIT}")
    assert sum(len(f[b"e"]) for _, f in raw_history(stack.redis, iid)) < LIMIT  # never stored


@pytest.mark.parametrize("workflow, named", [
    ("rel_return_big", "output of workflow 'rel_return_big'"),
    ("rel_big_input", "input of activity 'rel_echo' (call #1)"),
    ("rel_custom_status", "custom status of workflow 'rel_custom_status'"),
])
def test_oversized_values_decided_by_workflow_code_fail_the_instance(stack, workflow, named):
    iid = stack.client.schedule_new_workflow(workflow, input=BIG)
    state = finished(stack.client, iid, WorkflowStatus.FAILED)
    assert state.failure_details.error_type == "PayloadTooLargeError"
    assert state.failure_details.message.startswith(f"{named} is ")
    assert f"over the limit of {LIMIT} (setting max_payload_bytes)" in state.failure_details.message
    assert state.output is None and state.custom_status is None
    history = stack.client.get_workflow_history(iid)
    assert history[-1]["kind"] == "ExecutionCompleted" and history[-1]["status"] == "FAILED"
    assert sum(len(f[b"e"]) for _, f in raw_history(stack.redis, iid)) < LIMIT  # never stored
    if workflow == "rel_big_input":
        assert executions(stack.redis, iid, 1) == 0 and not [e for e in history if e["kind"] == "TaskScheduled"]
    if workflow == "rel_return_big":  # the activity's result, which the failing step had in hand, is kept
        assert [e["kind"] for e in history].count("TaskCompleted") == 1


# -- malformed events ----------------------------------------------------------------------------------
def _waiting_for_go(stack: SimpleNamespace, instance_id: str) -> list[Any]:
    stack.client.schedule_new_workflow("rel_event_then_echo", instance_id=instance_id)
    wait_until(lambda: stack.client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.RUNNING,
               timeout=20, what=f"{instance_id} to run and wait for 'go'")
    return raw_history(stack.redis, instance_id)


def _worker_still_runs_workflows(stack: SimpleNamespace) -> None:
    iid = stack.client.schedule_new_workflow("rel_one", input={"value": "after"})
    assert finished(stack.client, iid).output == "after"


def test_a_malformed_inbox_entry_fails_its_instance_and_keeps_everything(stack):
    iid = "garbage-inbox"
    before = _waiting_for_go(stack, iid)
    inbox = KEYS.instance(iid).inbox
    garbage_id = stack.redis.xadd(inbox, {"t": "e:go", "f": "0", "e": b"\xc1 not msgpack"}).decode()
    stack.client.raise_workflow_event(iid, "go", data=1)  # wakes the step that meets the garbage
    failure = finished(stack.client, iid, WorkflowStatus.FAILED).failure_details
    assert failure.error_type == "HistoryFormatError"
    assert f"inbox entry {garbage_id} of {inbox} is malformed" in failure.message
    assert raw_history(stack.redis, iid) == before  # history untouched
    assert stack.redis.xlen(inbox) == 2  # the garbage and the event raised after it, kept for inspection
    _worker_still_runs_workflows(stack)


def test_a_malformed_history_entry_fails_its_instance_and_keeps_everything(stack):
    iid = "garbage-history"
    before = _waiting_for_go(stack, iid)
    hist = KEYS.instance(iid).hist
    garbage_id = stack.redis.xadd(hist, {"x": "no events field"}).decode()
    stack.client.raise_workflow_event(iid, "go", data=1)
    failure = finished(stack.client, iid, WorkflowStatus.FAILED).failure_details
    assert failure.error_type == "HistoryFormatError"
    assert f"history entry {garbage_id} of {hist} is malformed: has no field 'e'" in failure.message
    assert raw_history(stack.redis, iid)[:-1] == before and stack.redis.xlen(KEYS.instance(iid).inbox) == 1
    _worker_still_runs_workflows(stack)


def test_a_malformed_timer_index_entry_is_dropped_and_the_timers_behind_it_fire(stack):
    timers = KEYS.shards()[0].timers  # written by hand: they belong to no instance's shard
    stack.redis.zadd(timers, {"no-separator": 0, "bad id{}|0.1": 1, "x|not.a.key": 2})
    iid = stack.client.schedule_new_workflow("rel_sleep", input=200)
    assert finished(stack.client, iid).output == "woke"
    assert stack.redis.zscore(timers, "no-separator") is None
    assert stack.redis.zscore(timers, "x|not.a.key") is None
    assert stack.redis.zscore(timers, "bad id{}|0.1") is None
    assert "dropped malformed timer index entry 'no-separator'" in stack.pool.log_path.read_text()


# -- steering instances that do not exist or have finished --------------------------------------------
def test_steering_an_unknown_instance_names_it(stack):
    c = stack.client
    for call in (lambda: c.raise_workflow_event("ghost-1", "go"), lambda: c.terminate_workflow("ghost-1"),
                 lambda: c.pause_workflow("ghost-1"), lambda: c.resume_workflow("ghost-1"),
                 lambda: c.purge_workflow("ghost-1"), lambda: c.get_workflow_history("ghost-1")):
        with pytest.raises(InstanceNotFoundError, match="'ghost-1'"):
            call()
    assert c.get_workflow_state("ghost-1") is None
    assert not stack.redis.exists(key("ghost-1", "meta"))  # no key was created by the refused calls


def test_steering_a_finished_instance_is_refused_and_purging_a_running_one_too(stack):
    c = stack.client
    done = c.schedule_new_workflow("rel_plain", input=4)
    finished(c, done)
    history = c.get_workflow_history(done)
    c.raise_workflow_event(done, "go")  # discarded, as Dapr documents (setting strict_events: refused)
    for call in (lambda: c.strict().raise_workflow_event(done, "go"), lambda: c.terminate_workflow(done),
                 lambda: c.pause_workflow(done), lambda: c.resume_workflow(done)):
        with pytest.raises(InstanceFinishedError, match="already finished"):
            call()
    assert c.get_workflow_history(done) == history and c.get_workflow_state(done).output == 8
    running = c.schedule_new_workflow("rel_wait")
    with pytest.raises(InstanceRunningError, match=f"'{running}' is (PENDING|RUNNING)"):
        c.purge_workflow(running)
    assert c.get_workflow_state(running) is not None
    c.terminate_workflow(running)
    assert c.purge_workflow(running) and c.purge_workflow(done)


# -- retry policies, ids -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, named", [
    ({"max_number_of_attempts": 0}, ValueError, "max_number_of_attempts must be >= 1"),
    ({"first_retry_interval": timedelta(-1)}, ValueError, "first_retry_interval must be >= 0"),
    ({"backoff_coefficient": 0.5}, ValueError, "backoff_coefficient must be >= 1"),
    ({"first_retry_interval": 5}, TypeError, "first_retry_interval must be a timedelta"),
    ({"max_retry_interval": timedelta(milliseconds=-1)}, ValueError, "max_retry_interval must be >= 0"),
])
def test_invalid_retry_policies_raise_naming_the_field(kwargs, error, named):
    args = {"first_retry_interval": timedelta(seconds=1), "max_number_of_attempts": 3, **kwargs}
    with pytest.raises(error, match=named):
        RetryPolicy(**args)


def test_an_invalid_retry_policy_in_workflow_code_fails_the_instance_before_any_call(stack):
    iid = stack.client.schedule_new_workflow("rel_bad_policy")
    failure = finished(stack.client, iid, WorkflowStatus.FAILED).failure_details
    assert failure.error_type == "ValueError" and "max_number_of_attempts must be >= 1" in failure.message
    assert not [e for e in stack.client.get_workflow_history(iid) if e["kind"] == "TaskScheduled"]


def test_a_duplicate_instance_id_is_refused_and_the_instance_left_alone(stack):
    c = stack.client
    iid = c.schedule_new_workflow("rel_collect", input=1, instance_id="taken-id")
    wait_until(lambda: c.get_workflow_state(iid).runtime_status == WorkflowStatus.RUNNING, timeout=20,
               what="the first taken-id instance to run")
    history = c.get_workflow_history(iid)
    with pytest.raises(InstanceAlreadyExistsError, match="'taken-id' already exists \\(RUNNING\\)"):
        c.schedule_new_workflow("rel_one", input={"value": 1}, instance_id="taken-id")
    with pytest.raises(InstanceAlreadyExistsError, match="only a finished instance's id can be reused"):
        c.schedule_new_workflow("rel_one", input={"value": 1}, instance_id="taken-id", reuse_id_policy="replace")
    with pytest.raises(ValueError, match="invalid instance id 'a b'"):
        c.schedule_new_workflow("rel_one", input={"value": 1}, instance_id="a b")
    with pytest.raises(ValueError, match="reuse_id_policy must be 'error' or 'replace'"):
        c.schedule_new_workflow("rel_one", input={"value": 1}, instance_id="new-id", reuse_id_policy="bogus")
    assert c.get_workflow_history(iid) == history and c.get_workflow_state(iid).name == "rel_collect"
    c.raise_workflow_event(iid, "go", data="still mine")
    assert finished(c, iid).output == ["still mine"]


# -- workflow code -------------------------------------------------------------------------------------
def test_workflow_code_that_raises_fails_with_type_message_and_stack(stack):
    iid = stack.client.schedule_new_workflow("rel_raises", input="broken invariant")
    failure = finished(stack.client, iid, WorkflowStatus.FAILED).failure_details
    assert (failure.error_type, failure.message) == ("ValueError", "broken invariant")
    assert "in raises" in failure.stack_trace
    assert [e["kind"] for e in stack.client.get_workflow_history(iid)].count("TaskCompleted") == 1  # kept


def test_workflow_code_that_yields_a_non_task_fails_naming_the_value(stack):
    iid = stack.client.schedule_new_workflow("rel_yields_int")
    failure = finished(stack.client, iid, WorkflowStatus.FAILED).failure_details
    assert failure.error_type == "TypeError"
    assert "workflow 'rel_yields_int' yielded 42 (int); a workflow must yield tasks" in failure.message


@pytest.mark.parametrize("workflow, expected", [("rel_plain", 10), ("rel_gen_no_yield", 6)])
def test_a_workflow_that_never_yields_completes_with_its_return_value(stack, workflow, expected):
    iid = stack.client.schedule_new_workflow(workflow, input=5)
    assert finished(stack.client, iid).output == expected
    kinds = [e["kind"] for e in stack.client.get_workflow_history(iid)]
    assert kinds == ["StepStarted", "ExecutionStarted", "ExecutionCompleted"]  # one step, no calls


def test_changed_workflow_code_fails_with_nondeterminism_and_keeps_history_and_inbox(client, redis_server):
    """Engine level (the pool-level test is test_core_engine.py::test_changed_code_fails_instance_...)."""

    def v1(ctx, _):
        return [(yield ctx.call_activity("nd_first", input=1)), (yield ctx.wait_for_external_event("go"))]

    def v2(ctx, _):
        return [(yield ctx.call_activity("nd_other", input=1)), (yield ctx.wait_for_external_event("go"))]

    class Sent:
        def __init__(self) -> None:
            self.activities: list[dict[str, Any]] = []

        def send_step(self, instance_id: str, app_id: str) -> None:
            pass

        def send_activity(self, record: dict[str, Any], app_id: str) -> None:
            self.activities.append(record)

    def engine(fn: Any) -> Engine:
        registry = Registry()
        registry.add_workflow(fn, "nd")
        registry.add_activity(lambda ctx, x: x, "nd_first")
        return Engine(RedisStore.from_url(redis_server.url), registry, Sent(), "default", inline_steps=False)

    old, new = engine(v1), engine(v2)
    old.store.register_workflows("default", ["nd"])
    iid = client.schedule_new_workflow("nd", instance_id="nd-1")
    old.run_step(iid)
    old.run_activity(old.publisher.activities[0])
    old.run_step(iid)  # consumed the result; now waits for "go"
    before = old.store.redis.xrange(old.store.keys.instance(iid).hist)
    client.raise_workflow_event(iid, "go", data="yes")
    new.run_step(iid)  # the deploy changed the code under the running instance
    state = client.get_workflow_state(iid)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "NonDeterminismError"
    assert "'nd_first'" in state.failure_details.message and "'nd_other'" in state.failure_details.message
    assert old.store.redis.xrange(old.store.keys.instance(iid).hist) == before
    assert [e.event.data for e in old.store.load(iid).inbox] == ["yes"]  # the event is not lost


# -- Redis not there ----------------------------------------------------------------------------------
def test_redis_unreachable_at_start_names_the_url_but_not_the_password():
    url = f"redis://app:hunter2-secret@127.0.0.1:{free_port()}/0"
    client = WorkflowClient(settings=Settings(redis_url=url))  # builds without connecting, like Dapr's
    for call in (lambda: client.schedule_new_workflow("rel_one", input=1), lambda: client.get_workflow_state("x"),
                 lambda: client.raise_workflow_event("x", "go"), lambda: client.list_workflows()):
        with pytest.raises(RedisUnavailableError) as info:
            call()
        message = str(info.value)
        assert "redis://app:***@127.0.0.1:" in message and "is unreachable" in message and "REDIS_URL" in message
        assert "hunter2" not in message
        assert isinstance(info.value, redis.exceptions.ConnectionError)  # retry paths still recognise it
    cli = subprocess.run([sys.executable, "-m", "orchestrator", "--redis-url", url, "status", "x"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and "redis://app:***@127.0.0.1" in cli.stderr and "hunter2" not in cli.stderr


def test_a_pool_started_before_redis_waits_for_it_then_works(tmp_path: Path):
    from orchestrator.worker.celery_app import create_celery_app

    # Once running, Celery's consumer reconnects to the broker for as long as it takes.
    assert create_celery_app(Settings()).conf.broker_connection_max_retries is None
    server = EmbeddedRedis(tmp_path / "redis")  # a fixed port, nothing listening yet
    pool = Pool(APP, server.url, "default", 1, tmp_path / "pool.log").start()
    try:
        wait_until(lambda: f"Redis at {server.url}" in pool.log_path.read_text() and "retrying in" in pool.log_path.read_text(),
                   timeout=20, what="the pool to log that it retries Redis")
        assert pool.proc.poll() is None  # waiting, not exited
        server.start()
        pool.wait_ready(60)
        client = WorkflowClient(settings=Settings(redis_url=server.url))
        iid = client.schedule_new_workflow("rel_one", input={"value": "late redis"})
        assert finished(client, iid).output == "late redis"
    finally:
        pool.kill()
        server.stop()


def test_redis_lost_mid_call_raises_naming_the_url_and_corrupts_nothing(tmp_path: Path):
    server = start_redis(tmp_path, appendfsync="always")
    pool = Pool(APP, server.url, "default", 1, tmp_path / "pool.log").start()
    try:
        pool.wait_ready()
        client = WorkflowClient(settings=Settings(redis_url=server.url))
        done = client.schedule_new_workflow("rel_one", input={"value": 1}, instance_id="before-the-loss")
        finished(client, done)
        r = redis.Redis.from_url(server.url)
        recorded = (r.hgetall(key("before-the-loss", "meta")), raw_history(r, done))
        r.execute_command("CLIENT", "PAUSE", "5000", "ALL")  # the next call's commands hang in Redis...
        errors: list[BaseException] = []

        def start() -> None:
            try:
                client.schedule_new_workflow("rel_one", input={"value": 2}, instance_id="during-the-loss")
            except BaseException as exc:  # noqa: BLE001 - inspected below
                errors.append(exc)

        caller = threading.Thread(target=start)
        caller.start()
        time.sleep(0.5)
        server.kill()  # ...and the server dies under them
        caller.join(30)
        assert len(errors) == 1 and isinstance(errors[0], RedisUnavailableError), errors
        assert server.url in str(errors[0])
        server.start()
        assert (r.hgetall(key("before-the-loss", "meta")), raw_history(r, done)) == recorded
        # The interrupted start happened entirely or not at all: never a half-made instance.
        made = r.exists(key("during-the-loss", "meta"))
        assert made == r.exists(key("during-the-loss", "inbox")) == (score(r, "index_all", "during-the-loss") is not None)
        if not made:
            client.schedule_new_workflow("rel_one", input={"value": 2}, instance_id="during-the-loss")
        assert finished(client, "during-the-loss").output == 2
    finally:
        pool.kill()
        server.stop()


def test_broker_unreachable_after_a_start_was_stored_still_succeeds_and_a_sweeper_publishes(stack):
    """The store took the start; only the step message could not be sent. The call must not report a
    failure (a retry would be refused as a duplicate id): a pool's sweeper publishes the step."""
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    c = WorkflowClient(settings=Settings(redis_url=stack.url, broker_url=dead_broker, max_payload_bytes=LIMIT))
    iid = c.schedule_new_workflow("rel_one", input={"value": "swept"}, instance_id="broker-down")
    assert finished(stack.client, iid).output == "swept"


# -- limits that warn rather than refuse ---------------------------------------------------------------
def test_a_history_past_history_warn_events_is_logged_and_counted(client, redis_server, caplog):
    from orchestrator import metrics, when_all

    def wide(ctx, n):
        return sum((yield when_all([ctx.call_activity("hw_one", input=i) for i in range(n)])))

    registry = Registry()
    registry.add_workflow(wide, "hw_wide")
    registry.add_activity(lambda ctx, i: i, "hw_one")
    sent: list[dict[str, Any]] = []
    publisher = SimpleNamespace(send_step=lambda *a: None, send_activity=lambda rec, app: sent.append(rec))
    engine = Engine(RedisStore.from_url(redis_server.url), registry, publisher, "default", inline_steps=False,
                    history_warn_events=25)
    engine.store.register_workflows("default", ["hw_wide"])
    iid = client.schedule_new_workflow("hw_wide", input=30, instance_id="long-history")
    with caplog.at_level("WARNING", logger="orchestrator.engine"):
        engine.run_step(iid)  # StepStarted, ExecutionStarted and 30 TaskScheduled: past 25
        for rec in sent:
            engine.run_activity(rec)
        engine.run_step(iid)  # StepStarted, 30 results, ExecutionCompleted: past 50 as well
    warnings = [r.getMessage() for r in caplog.records if "history events" in r.getMessage()]
    assert len(warnings) == 2 and "consider ctx.continue_as_new" in warnings[0]
    assert "has 32 history events (setting history_warn_events = 25)" in warnings[0]
    assert "has 64 history events" in warnings[1]
    metrics.flush()
    recorded = metrics.read_recorded(engine.store)["orchestrator_history_warnings"]
    assert recorded[("hw_wide",)].value == 2
    assert client.get_workflow_state(iid).output == sum(range(30))
    assert len(client.get_workflow_history(iid)) == 64  # the figure warned about is the real size
