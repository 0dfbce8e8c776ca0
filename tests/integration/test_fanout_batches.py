"""Wide fan-outs travel several activities per message, and a slow batch hands its rest back."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter

import msgpack

from orchestrator import Settings, WorkflowStatus
from orchestrator.core.history import TaskCompleted
from orchestrator.store.redis_store import RedisStore
from orchestrator.worker.celery_app import ACTIVITIES_TASK, STEP_TASK, CeleryPublisher, create_celery_app, queue_name
from orchestrator.worker.engine import Engine
from tests.apps.core_app import wfr as core_wfr
from tests.support.store_keys import key, shard_total

APP = "tests.apps.core_app"


def queued(r, queue: str) -> list[tuple[str, list]]:
    """(task name, args) of every message in a kombu Redis queue, oldest first."""
    out = []
    for raw in reversed(r.lrange(queue, 0, -1)):
        message = json.loads(raw)
        args, _kwargs, _embed = msgpack.unpackb(base64.b64decode(message["body"]), raw=False)
        out.append((message["headers"]["task"], args))
    return out


def test_a_fan_out_of_300_is_committed_as_4_messages_and_completes_once_each(client, redis_server, redis_client,
                                                                             start_pool):
    settings = Settings(redis_url=redis_server.url)
    store = RedisStore.from_url(redis_server.url)
    engine = Engine(store, core_wfr.registry, CeleryPublisher(create_celery_app(settings), direct=True), "default",
                    inline_steps=False, activity_batch_size=100, fanout_parallelism=4)
    iid = client.schedule_new_workflow("fan_out", input=300, app_id="default")
    engine.run_step(iid)  # the fan-out step, run here before any pool exists

    messages = queued(redis_client, queue_name("default"))
    assert [task for task, _ in messages] == [STEP_TASK] + [ACTIVITIES_TASK] * 4  # the start's step, then ours
    groups = [args[0] for _, args in messages[1:]]
    assert [len(g) for g in groups] == [75] * 4
    assert [rec["input"] for g in groups for rec in g] == [[i, i] for i in range(300)]
    assert not redis_client.exists(key(iid, "outbox"))  # pushed by the commit, not via the outbox

    start_pool(APP)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    assert json.loads(state.serialized_output) == {"count": 300, "sum": 2 * sum(range(300)), "first": [0, 2, 4]}
    completions = Counter(e.seq for e in store.get_history(iid) if isinstance(e, TaskCompleted))
    assert len(completions) == 300 and set(completions.values()) == {1}
    assert redis_client.llen(queue_name("default")) == 0 and shard_total(redis_client, "activities") == 0


def test_a_batch_past_its_time_budget_sends_the_rest_back_so_other_processes_share_them(client, start_pool):
    """Parallelism 1: all six slow activities ride in one message. Run as one batch they would all
    run in one process; past the 0.2 s budget the rest go back as single messages, and both
    processes of the pool take them."""
    pool = start_pool(APP, concurrency=2, env={"ORCH_FANOUT_PARALLELISM": "1", "ORCH_ACTIVITY_BATCH_SIZE": "32",
                                               "ORCH_MESSAGE_BUDGET_SECONDS": "0.2"})
    iid = client.schedule_new_workflow("slow_fan_out", input={"n": 6, "nap": 0.3})
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    pids = json.loads(state.serialized_output)
    assert len(pids) == 6 and len(set(pids)) == 2
    log = pool.log_path.read_text()
    assert "sent 5 remaining attempts back to the queue singly" in log
    assert len(re.findall(rf"Task {ACTIVITIES_TASK}\[[^\]]+\] succeeded", log)) == 1  # one batch message, run once
