"""Activity messages pushed by the commit script (broker = store Redis) versus published from the outbox."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import msgpack
import redis

from orchestrator import Settings, WorkflowStatus
from orchestrator.worker.celery_app import ACTIVITY_TASK, STEP_TASK, CeleryPublisher, create_celery_app, queue_name
from tests.support.store_keys import key, shard_total

APP = "tests.apps.core_app"
RECORD = {"k": "a", "id": "wf-1", "gen": 2, "seq": 7, "name": "add", "input": [1, {"x": b"\x00"}],
          "app": "default", "wf": "chain", "wapp": "default", "attempt": 3}
# Differ per message or per process by design: a fresh tag, the sender's pid, Celery's random reply queue.
VARYING = {("properties", "delivery_tag"), ("headers", "origin"), ("properties", "reply_to")}


def _decoded(raw: bytes) -> dict:
    message = json.loads(raw)
    message["body"] = msgpack.unpackb(base64.b64decode(message["body"]), raw=False)
    for section, name in VARYING:
        message[section].pop(name)
    # Celery copies argsrepr/kwargsrepr into the properties too; the worker reads them from the headers.
    message["properties"].pop("argsrepr", None)
    message["properties"].pop("kwargsrepr", None)
    return message


def test_the_pushed_message_is_what_send_task_publishes(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    publisher = CeleryPublisher(create_celery_app(Settings(redis_url=redis_server.url)), direct=True)
    publisher.send_activity(RECORD, "default")
    sent = r.rpop(queue_name("default"))
    queue, ours = publisher.activity_message([RECORD], "default")

    assert queue == queue_name("default")
    assert _decoded(ours) == _decoded(sent)
    theirs = json.loads(ours)
    assert theirs["headers"]["task"] == ACTIVITY_TASK and theirs["properties"]["delivery_tag"]
    assert json.loads(publisher.activity_message([RECORD], "default")[1])["properties"]["delivery_tag"] \
        != theirs["properties"]["delivery_tag"]


def test_the_pushed_step_message_is_what_send_step_publishes(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    publisher = CeleryPublisher(create_celery_app(Settings(redis_url=redis_server.url)), direct=True)
    publisher.send_step("wf-1", "billing")
    sent = _decoded(r.rpop(queue_name("billing")))
    queue, ours = publisher.step_message("wf-1", "billing")
    ours = _decoded(ours)
    assert queue == queue_name("billing")
    # A step message's Celery task id is random (any copy of a step is as good as another).
    for message in (sent, ours):
        for where, name in (("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id")):
            assert message[where].pop(name)
    assert ours == sent and ours["headers"]["task"] == STEP_TASK


def test_a_start_is_queued_by_the_create_script_itself(client, redis_client):
    """No pool runs: the step message found on the queue can only come from the start's own script."""
    iid = client.schedule_new_workflow("anything", app_id="billing")
    [raw] = redis_client.lrange(queue_name("billing"), 0, -1)
    message = _decoded(raw)
    assert message["headers"]["task"] == STEP_TASK and message["body"][0] == [iid]
    later = client.schedule_new_workflow("anything", app_id="billing", start_at=datetime.now() + timedelta(hours=1))
    assert redis_client.llen(queue_name("billing")) == 1  # a scheduled start is queued by its timer, later
    assert client.get_workflow_state(later).runtime_status == WorkflowStatus.PENDING


def test_without_direct_the_engine_falls_back_to_publishing(redis_server):
    publisher = CeleryPublisher(create_celery_app(Settings(redis_url=redis_server.url)))
    assert publisher.activity_message([RECORD], "default") is None
    assert publisher.step_message("wf-1", "default") is None
    assert Settings(redis_url="redis://a:1/0").broker_is_store
    assert not Settings(redis_url="redis://a:1/0", broker_url="redis://a:1/1").broker_is_store


def test_a_pool_whose_broker_is_another_database_runs_activities_through_the_outbox(client, start_pool, redis_server):
    """Broker on db 1, store on db 0: no script may push to the broker, so messages go via the outbox."""
    broker = redis_server.url.rsplit("/", 1)[0] + "/1"
    start_pool(APP, env={"ORCH_BROKER_URL": broker})
    client_settings = Settings(redis_url=redis_server.url, broker_url=broker)
    from orchestrator import WorkflowClient

    c = WorkflowClient(settings=client_settings)
    iid = c.schedule_new_workflow("fan_out", input=20)
    state = c.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    assert json.loads(state.serialized_output)["count"] == 20
    store_db = redis.Redis.from_url(redis_server.url)
    assert not store_db.exists(queue_name("default"))  # nothing was pushed into the store's database
    assert shard_total(store_db, "outbox") == 0 and not store_db.exists(key(iid, "outbox"))
