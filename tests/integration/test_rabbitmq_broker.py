"""RabbitMQ as the Celery broker (quorum queues), the store on its own Redis.

Needs a RabbitMQ on 127.0.0.1:5672 (guest/guest) and ``rabbitmqctl`` to make a private vhost for the
test, deleted after; skips with the reason when the machine has none."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid

import pytest

from orchestrator import Settings, WorkflowClient, WorkflowStatus
from tests.conftest import Pool
from tests.support.redis_proc import start_redis


def _rabbit_missing() -> str | None:
    if shutil.which("rabbitmqctl") is None:
        return "no rabbitmqctl on PATH (RabbitMQ is not installed here)"
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        return "no RabbitMQ listening on 127.0.0.1:5672"
    return None


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def vhost():
    missing = _rabbit_missing()
    if missing:
        pytest.skip(f"RabbitMQ broker test skipped: {missing}")
    name = f"orch-test-{uuid.uuid4().hex[:8]}"
    _ctl("add_vhost", name)
    try:
        _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        _ctl("delete_vhost", name)


def test_workflows_run_on_rabbitmq_with_quorum_queues_and_batched_fan_outs(vhost, tmp_path):
    store = start_redis(tmp_path)
    broker = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    env = {"ORCH_BROKER_URL": broker, "ORCH_BROKER_QUEUE_TYPE": "quorum"}
    pool = Pool("tests.apps.core_app", store.url, "default", 2, tmp_path / "pool.log", env).start()
    try:
        pool.wait_ready(60)
        client = WorkflowClient(settings=Settings(redis_url=store.url, broker_url=broker, broker_queue_type="quorum"))
        chain = client.schedule_new_workflow("chain", input=10)
        wide = client.schedule_new_workflow("fan_out", input=300)
        for instance_id in (chain, wide):
            state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=120)
            assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
        assert client.get_workflow_state(chain).output == 45
        assert client.get_workflow_state(wide).output["count"] == 300
        log = pool.log_path.read_text()
        # 300 activities travelled as the fan-out's batches (at most fanout_parallelism = 128 messages).
        done = [line for line in log.splitlines() if "] succeeded in" in line]
        batches = sum("Task orchestrator.activities[" in line for line in done)
        singles = sum("Task orchestrator.activity[" in line for line in done)
        assert 0 < batches and batches + singles <= 128 + 10, (batches, singles)
        queues = subprocess.run(["rabbitmqctl", "list_queues", "-p", vhost, "name", "type"], capture_output=True,
                                text=True, check=True, timeout=60).stdout
        assert any(line.split()[:2] == ["orchestrator.default", "quorum"] for line in queues.splitlines()), queues
    finally:
        pool.kill()
        store.stop()


def test_a_pool_exits_non_zero_on_a_broker_it_cannot_use(tmp_path):
    store = start_redis(tmp_path)
    env = {"ORCH_BROKER_URL": "sentinel://127.0.0.1:1"}  # no master_name transport option: unusable
    pool = Pool("tests.apps.core_app", store.url, "default", 1, tmp_path / "pool.log", env).start()
    try:
        assert pool.proc is not None
        code = pool.proc.wait(60)
        assert code != 0, pool.log_tail()
        assert "master_name" in pool.log_path.read_text()
    finally:
        pool.kill()
        store.stop()
