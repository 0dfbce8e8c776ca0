"""Celery's own tools tell the truth about activity attempts: a failed attempt is a FAILURE in Celery
events (what Flower shows), a successful one a SUCCESS, and the failed one's message is acknowledged
exactly once (no Celery retry, no reject, no redelivery). And the broker connection's URL is the
Redis one, so Flower's broker tab and ``celery inspect`` recognise it."""

from __future__ import annotations

import threading
from typing import Any

from orchestrator import Settings, WorkflowClient, WorkflowStatus
from orchestrator.worker.broker import Transport
from orchestrator.worker.celery_app import ACTIVITY_TASK, create_celery_app
from tests.support.waiting import wait_until

APP = "tests.apps.ops_app"


def test_the_broker_connection_is_a_redis_url_served_by_our_transport() -> None:
    app = create_celery_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    connection = app.connection(connect_timeout=1.0)
    assert connection.as_uri().startswith("redis://") and connection.as_uri().endswith("@127.0.0.1:1/0")
    assert isinstance(connection.transport, Transport)


def test_a_failed_activity_attempt_is_a_failure_in_celery_events(redis_server: Any, client: WorkflowClient,
                                                                  start_pool: Any) -> None:
    # An eager activity runs inside the message of the step that scheduled it (docs/observability.md):
    # each attempt is its own Celery task with eager activities off.
    start_pool(APP, env={"ORCH_EAGER_ACTIVITY_HOPS": "0"})
    app = create_celery_app(client.settings)
    events: list[dict[str, Any]] = []
    receiver: list[Any] = []

    def capture() -> None:
        with app.connection() as conn:
            recv = app.events.Receiver(conn, handlers={"*": events.append})
            receiver.append(recv)
            recv.capture(limit=None, timeout=None, wakeup=True)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    try:
        # Workers send task events once asked (Flower asks the same way); until one arrives, ask again.
        def listening() -> bool:
            app.control.enable_events()
            return any(e["type"].startswith("worker-") for e in events)

        wait_until(listening, timeout=30, what="the pool's events")
        client.schedule_new_workflow("doomed", input="no access", instance_id="doomed-ev")
        client.schedule_new_workflow("hello", input="ev", instance_id="hello-ev")
        for iid in ("doomed-ev", "hello-ev"):
            client.wait_for_workflow_completion(iid, timeout_in_seconds=30)
        assert client.get_workflow_state("doomed-ev").runtime_status == WorkflowStatus.FAILED
        failed_id, ok_id = (f"{iid}|{client.store.get_meta(iid).task_key(1)}|1" for iid in ("doomed-ev", "hello-ev"))

        def outcome(task_id: str) -> set[str]:
            return {e["type"] for e in events if e.get("uuid") == task_id and e["type"] in (
                "task-failed", "task-succeeded", "task-retried", "task-rejected")}

        wait_until(lambda: outcome(failed_id) and outcome(ok_id), timeout=30, what="both tasks' outcome events")
        assert outcome(failed_id) == {"task-failed"} and outcome(ok_id) == {"task-succeeded"}
        failure = next(e for e in events if e.get("uuid") == failed_id and e["type"] == "task-failed")
        assert "PermissionError: no access" in failure["exception"]
        received = [e for e in events if e.get("uuid") == failed_id and e["type"] == "task-received"]
        assert len(received) == 1 and received[0]["name"] == ACTIVITY_TASK  # delivered once, never again
        history = client.get_workflow_history("doomed-ev")
        assert [e["kind"] for e in history].count("TaskFailed") == 1
        broker = client.store.redis
        wait_until(lambda: not broker.hlen("unacked"), timeout=10, what="the failed message's acknowledgement")
    finally:
        if receiver:
            receiver[0].should_stop = True
        thread.join(10)


def test_two_runtimes_in_one_process_each_run_their_own_tasks() -> None:
    from orchestrator import WorkflowRuntime
    from orchestrator.worker.celery_app import ACTIVITIES_TASK, STEP_TASK

    first = WorkflowRuntime(settings=Settings(redis_url="redis://127.0.0.1:1/0"))
    assert first.celery_app.tasks[STEP_TASK]  # the first app exists, its tasks registered
    second = WorkflowRuntime(settings=Settings(redis_url="redis://127.0.0.1:2/0"))
    for name in (STEP_TASK, ACTIVITY_TASK, ACTIVITIES_TASK):
        mine, theirs = second.celery_app.tasks[name], first.celery_app.tasks[name]
        # Its own function (a closure over its own engine), not the first app's.
        assert mine._decorated_fun is not theirs._decorated_fun, name
