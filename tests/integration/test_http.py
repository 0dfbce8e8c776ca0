"""The HTTP API against a private Redis and a real worker pool: every route, and its errors.

Most tests drive the app in-process through FastAPI's TestClient (real HTTP semantics over ASGI);
``test_real_server_*`` run ``orchestrator serve`` under uvicorn in its own process and talk to it
with httpx over TCP, as curl would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import Settings, WorkflowClient
from orchestrator.http import create_app
from tests.support.defaults import API_CLIENT
from tests.support.redis_proc import free_port

APP = "tests.apps.ops_app"
ROOT = Path(__file__).resolve().parents[2]
WF = "/v1.0/workflows/dapr"
TOKEN = "s3cret-token-for-tests-0123456789"


def poll(fn: Callable[[], Any], until: Callable[[Any], bool], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value: {value!r}"
        time.sleep(0.05)


def status_of(http: Any, instance_id: str) -> dict[str, Any]:
    r = http.get(f"{WF}/{instance_id}")
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(http: Any, instance_id: str, *statuses: str) -> dict[str, Any]:
    return poll(lambda: status_of(http, instance_id), lambda s: s["runtimeStatus"] in statuses)


def assert_error(r: httpx.Response, status: int, code: str, *needles: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["errorCode"] == code, body
    for needle in needles:
        assert needle in body["message"], (needle, body)


@pytest.fixture
def http(client: WorkflowClient, start_pool: Any) -> Iterator[TestClient]:
    start_pool(APP)
    with TestClient(create_app(client.settings, client), **API_CLIENT) as test_client:
        yield test_client


def test_start_then_poll_the_location_to_completed(http: TestClient) -> None:
    r = http.post(f"{WF}/hello/start?instanceID=h-1", json="ada")
    assert r.status_code == 202 and r.json() == {"instanceID": "h-1"}
    assert r.headers["location"] == f"http://localhost{WF}/h-1" and r.headers["retry-after"] == "1"
    done = poll(lambda: http.get(r.headers["location"]).json(), lambda s: s["runtimeStatus"] == "COMPLETED")
    assert done["instanceID"] == "h-1" and done["workflowName"] == "hello"
    assert done["createdAt"].endswith("Z") and done["lastUpdatedAt"].endswith("Z")
    assert done["properties"] == {"dapr.workflow.custom_status": "", "dapr.workflow.input": '"ada"',
                                  "dapr.workflow.output": '"hello ada"'}


def test_start_without_id_and_without_body(http: TestClient) -> None:
    r = http.post(f"{WF}/naps/start", content=b"")  # empty body: input null -> naps(None) fails
    assert r.status_code == 202
    instance_id = r.json()["instanceID"]
    assert len(instance_id) == 32
    failed = wait_status(http, instance_id, "FAILED", "COMPLETED")
    assert failed["runtimeStatus"] == "FAILED" and "dapr.workflow.input" not in failed["properties"]


def test_raise_event_completes_a_waiting_instance(http: TestClient) -> None:
    http.post(f"{WF}/approval/start?instanceID=a-1", json={"order": 7})
    waiting = poll(lambda: status_of(http, "a-1"), lambda s: s["properties"]["dapr.workflow.custom_status"] != "")
    assert json.loads(waiting["properties"]["dapr.workflow.custom_status"]) == {"waiting_for": "approve"}
    r = http.post(f"{WF}/a-1/raiseEvent/approve", json={"by": "ann"})
    assert r.status_code == 202 and r.content == b""
    done = wait_status(http, "a-1", "COMPLETED")
    assert json.loads(done["properties"]["dapr.workflow.output"]) == {
        "order": {"order": 7}, "decision": {"by": "ann"}, "greeting": "hello ann"}
    # A finished instance refuses events, naming why.
    assert_error(http.post(f"{WF}/a-1/raiseEvent/approve", json={}), 409, "ERR_RAISE_EVENT_WORKFLOW", "finished")


def test_terminate_with_output_then_purge(http: TestClient) -> None:
    http.post(f"{WF}/approval/start?instanceID=t-1", json={})
    wait_status(http, "t-1", "RUNNING")
    assert_error(http.post(f"{WF}/t-1/purge"), 409, "ERR_PURGE_WORKFLOW", "only finished instances")
    r = http.post(f"{WF}/t-1/terminate", json={"reason": "cancelled by ops"})
    assert r.status_code == 202 and r.content == b""
    done = wait_status(http, "t-1", "TERMINATED")
    assert json.loads(done["properties"]["dapr.workflow.output"]) == {"reason": "cancelled by ops"}
    assert_error(http.post(f"{WF}/t-1/terminate"), 409, "ERR_TERMINATE_WORKFLOW", "already finished")
    assert http.post(f"{WF}/t-1/purge").status_code == 202
    assert_error(http.get(f"{WF}/t-1"), 404, "ERR_INSTANCE_ID_NOT_FOUND", "t-1")


def test_pause_holds_events_until_resume(http: TestClient) -> None:
    http.post(f"{WF}/approval/start?instanceID=p-1", json={})
    wait_status(http, "p-1", "RUNNING")
    assert http.post(f"{WF}/p-1/pause").status_code == 202
    wait_status(http, "p-1", "SUSPENDED")
    assert http.post(f"{WF}/p-1/raiseEvent/approve", json={"by": "bo"}).status_code == 202
    history = http.get("/api/instances/p-1/history").json()["events"]
    assert not any(e["kind"] == "EventRaised" for e in history)  # kept in the inbox while suspended
    assert status_of(http, "p-1")["runtimeStatus"] == "SUSPENDED"
    assert http.post(f"{WF}/p-1/resume").status_code == 202
    done = wait_status(http, "p-1", "COMPLETED")
    assert json.loads(done["properties"]["dapr.workflow.output"])["decision"] == {"by": "bo"}


def test_failed_instance_reports_dapr_failure_properties(http: TestClient) -> None:
    http.post(f"{WF}/doomed/start?instanceID=d-1", json="no entry")
    failed = wait_status(http, "d-1", "FAILED")
    props = failed["properties"]
    assert props["dapr.workflow.failure.error_type"] == "PermissionError"
    assert "no entry" in props["dapr.workflow.failure.error_message"]
    assert "dapr.workflow.output" not in props


def test_bad_requests_answer_4xx_naming_the_problem(http: TestClient) -> None:
    assert_error(http.post(f"{WF}/no_such_flow/start", json=1), 404, "ERR_START_WORKFLOW", "'no_such_flow'")
    assert_error(http.post(f"{WF}/hello/start", content=b'{"who": '), 400, "ERR_MALFORMED_REQUEST",
                 "not valid JSON", "line 1 column 9")
    assert_error(http.post(f"{WF}/hello/start", content=b"\xff\xfe"), 400, "ERR_MALFORMED_REQUEST", "UTF-8")
    assert_error(http.post(f"{WF}/hello/start?instanceID=bad%20id!", json="x"), 400, "ERR_INSTANCE_ID_INVALID",
                 "'bad id!'")
    assert_error(http.post("/v1.0/workflows/other/hello/start", json="x"), 400,
                 "ERR_WORKFLOW_COMPONENT_NOT_FOUND", "'other'")
    assert http.post(f"{WF}/hello/start?instanceID=dup", json="x").status_code == 202
    assert_error(http.post(f"{WF}/hello/start?instanceID=dup", json="x"), 409, "ERR_START_WORKFLOW", "'dup'")
    for path in ("raiseEvent/approve", "terminate", "pause", "resume", "purge"):
        assert_error(http.post(f"{WF}/ghost/{path}"), 404, "ERR_INSTANCE_ID_NOT_FOUND", "'ghost'")
    assert_error(http.get(f"{WF}/ghost"), 404, "ERR_INSTANCE_ID_NOT_FOUND", "'ghost'")
    assert_error(http.post(f"{WF}/dup/raiseEvent/approve", content=b"[1,"), 400, "ERR_MALFORMED_REQUEST", "event 'approve'")
    assert_error(http.get("/api/instances?status=sleeping"), 400, "ERR_MALFORMED_REQUEST", "'sleeping'")
    assert_error(http.get("/api/instances?limit=0"), 400, "ERR_MALFORMED_REQUEST", "limit")
    assert_error(http.get("/api/instances/ghost"), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    assert_error(http.get("/api/instances/ghost/history"), 404, "ERR_INSTANCE_ID_NOT_FOUND")


def test_oversized_bodies_are_refused_by_header_and_by_bytes(client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP)
    small = client.settings.replace(max_payload_bytes=1000)
    with TestClient(create_app(small, WorkflowClient(settings=small)), **API_CLIENT) as http:
        big = json.dumps("x" * 2000).encode()
        assert_error(http.post(f"{WF}/hello/start", content=big), 413, "ERR_PAYLOAD_TOO_LARGE", "2002 bytes", "1000")

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
            yield b'"' + b"y" * 600
            yield b"y" * 600 + b'"'

        assert_error(http.post(f"{WF}/hello/start", content=chunks()), 413, "ERR_PAYLOAD_TOO_LARGE", "1000")
        # Under the limit as JSON text but over it once encoded is impossible for msgpack (smaller),
        # so a body just under the limit is accepted and runs.
        r = http.post(f"{WF}/hello/start", content=json.dumps("z" * 900).encode())
        assert r.status_code == 202
        wait_status(http, r.json()["instanceID"], "COMPLETED")


def test_list_pages_filters_history_and_counts(http: TestClient) -> None:
    for i in range(3):
        http.post(f"{WF}/hello/start?instanceID=l-{i}", json=f"n{i}")
    http.post(f"{WF}/doomed/start?instanceID=l-bad", json="nope")
    for i in range(3):
        wait_status(http, f"l-{i}", "COMPLETED")
    wait_status(http, "l-bad", "FAILED")
    first = http.get("/api/instances?name=hello&limit=2").json()
    assert [i["instance_id"] for i in first["items"]] == ["l-2", "l-1"] and first["next_offset"] == 2
    assert first["total"] == 3
    rest = http.get("/api/instances?name=hello&limit=2&offset=2").json()
    assert [i["instance_id"] for i in rest["items"]] == ["l-0"] and rest["next_offset"] is None
    failed = http.get("/api/instances?status=failed").json()["items"]
    assert [i["instance_id"] for i in failed] == ["l-bad"] and failed[0]["failure_details"]["error_type"] == "PermissionError"
    one = http.get("/api/instances/l-1").json()
    assert (one["runtime_status"], one["input"], one["output"]) == ("COMPLETED", "n1", "hello n1")
    history = http.get("/api/instances/l-1/history").json()
    kinds = [e["kind"] for e in history["events"]]
    assert history["instance_id"] == "l-1" and kinds[0] == "StepStarted" and "ExecutionStarted" in kinds
    assert "TaskCompleted" in kinds and kinds[-1] == "ExecutionCompleted"
    counts = http.get("/api/counts").json()
    assert counts["total"] == 4 and counts["by_status"]["COMPLETED"] == 3 and counts["by_status"]["FAILED"] == 1
    assert counts["by_name"]["hello"]["total"] == 3 and counts["by_name"]["hello"]["by_status"]["COMPLETED"] == 3
    assert counts["by_name"]["doomed"]["by_status"]["FAILED"] == 1
    future = http.get("/api/counts", params={"created_from": "2999-01-01T00:00:00Z"}).json()
    assert future["total"] == 0 and future["by_name"] == {}
    assert http.get("/api/instances", params={"created_to": "2000-01-01T00:00:00"}).json()["items"] == []


def test_metrics_aggregate_the_pool_processes(http: TestClient) -> None:
    http.post(f"{WF}/hello/start?instanceID=m-1", json="x")
    http.post(f"{WF}/doomed/start?instanceID=m-2", json="no")
    wait_status(http, "m-1", "COMPLETED")
    wait_status(http, "m-2", "FAILED")

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        r = http.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(r.text) for s in f.samples}

    key = ("orchestrator_workflows_finished_total", (("status", "FAILED"), ("workflow", "doomed")))
    # Worker processes add their increments to Redis about once a second.
    got = poll(samples, lambda s: s.get(key) == 1 and s.get(
        ("orchestrator_activity_failures_total", (("activity", "refuse"),))) == 1)
    assert got[("orchestrator_workflows_finished_total", (("status", "COMPLETED"), ("workflow", "hello")))] == 1
    assert got[("orchestrator_workflows_started_total", (("workflow", "hello"),))] == 1
    assert got[("orchestrator_activity_attempts_total", (("activity", "greet"),))] == 1
    assert got[("orchestrator_step_duration_seconds_count", (("workflow", "hello"),))] >= 2
    assert got[("orchestrator_history_events_count", (("workflow", "hello"),))] >= 2
    assert got[("orchestrator_instances", (("status", "COMPLETED"), ("workflow", "hello")))] == 1
    assert got[("orchestrator_queue_messages", (("queue", "orchestrator.default"),))] == 0
    for gauge in ("orchestrator_ready_instances", "orchestrator_outbox_instances", "orchestrator_timer_lag_seconds"):
        assert (gauge, ()) in got


def test_openapi_schema_lists_every_route(http: TestClient) -> None:
    schema = http.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/v1.0/workflows/{component}/{workflow_name}/start",
                 "/v1.0/workflows/{component}/{instance_id}",
                 "/v1.0/workflows/{component}/{instance_id}/raiseEvent/{event_name}",
                 "/v1.0/workflows/{component}/{instance_id}/terminate", "/v1.0/workflows/{component}/{instance_id}/pause",
                 "/v1.0/workflows/{component}/{instance_id}/resume", "/v1.0/workflows/{component}/{instance_id}/purge",
                 "/api/instances", "/api/instances/{instance_id}/history", "/api/counts", "/metrics", "/healthz"):
        assert path in paths, path
    start = paths["/v1.0/workflows/{component}/{workflow_name}/start"]["post"]
    assert "202" in start["responses"] and "404" in start["responses"] and "requestBody" in start


def test_token_is_required_when_set_except_for_health(client: WorkflowClient) -> None:
    guarded = client.settings.replace(api_token=TOKEN)
    with TestClient(create_app(guarded, WorkflowClient(settings=guarded)), **API_CLIENT) as http:
        assert_error(http.get("/api/counts"), 401, "ERR_UNAUTHORIZED", "Bearer")
        assert_error(http.get("/api/counts", headers={"Authorization": "Bearer wrong"}), 401, "ERR_UNAUTHORIZED")
        assert http.get("/api/counts", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert http.get("/api/counts", auth=("anyone", TOKEN)).status_code == 200  # Basic: token as password
        assert http.get("/api/counts", auth=("anyone", "wrong")).status_code == 401
        browser = http.get("/api/counts", headers={"Accept": "text/html"})
        assert browser.status_code == 401 and browser.headers["www-authenticate"].startswith("Basic")
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/openapi.json").status_code == 200


def test_health_reports_an_unreachable_store() -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings), **API_CLIENT) as http:
        r = http.get("/healthz")
        assert r.status_code == 503 and r.json()["errorCode"] == "ERR_STORE_UNAVAILABLE"
        assert_error(http.get("/api/counts"), 503, "ERR_STORE_UNAVAILABLE", "Redis")


def _serve(url: str, port: int, host: str, log: Path, token: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    env.pop("ORCH_API_TOKEN", None)
    if token:
        env["ORCH_API_TOKEN"] = token
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "serve", "--host", host, "--port", str(port)],
                            env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_real_server_refuses_a_public_bind_without_token(redis_server: Any, tmp_path: Path) -> None:
    proc = _serve(redis_server.url, free_port(), "0.0.0.0", tmp_path / "api.log", None)
    assert proc.wait(30) == 2
    assert "refusing to serve on 0.0.0.0" in (tmp_path / "api.log").read_text()


def test_real_server_over_tcp_with_token(redis_server: Any, start_pool: Any, tmp_path: Path) -> None:
    start_pool(APP)
    port = free_port()
    proc = _serve(redis_server.url, port, "0.0.0.0", tmp_path / "api.log", TOKEN)
    try:
        base = f"http://127.0.0.1:{port}"
        poll(lambda: _get_or_none(f"{base}/healthz"), lambda r: r is not None and r.status_code == 200)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(f"{base}{WF}/hello/start", json="tcp").status_code == 401
        r = httpx.post(f"{base}{WF}/hello/start?instanceID=tcp-1", json="tcp", headers=auth)
        assert r.status_code == 202 and r.headers["location"] == f"{base}{WF}/tcp-1"
        done = poll(lambda: httpx.get(r.headers["location"], headers=auth).json(),
                    lambda s: s.get("runtimeStatus") == "COMPLETED")
        assert done["properties"]["dapr.workflow.output"] == '"hello tcp"'
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(20) == 0, (tmp_path / "api.log").read_text()


def _get_or_none(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
