"""Issue 19, class 6: the HTTP API is safe from browsers (DESIGN §8, docs/security.md).

A cross-site page can send "simple" requests (forms: urlencoded, multipart, text/plain; fetch without
a body) with the browser's Basic login attached, and can rebind a DNS name to 127.0.0.1. Every
state-changing route refuses what such a page can forge, a loopback-bound server answers only
loopback Host names, and bodies that break the payload rules are a 400 naming the problem.

The app runs in-process (FastAPI's TestClient over ASGI) against a private Redis and a real pool
with default settings; the last test runs ``orchestrator serve`` and speaks TCP to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from orchestrator import WorkflowClient, WorkflowStatus
from orchestrator.http import create_app
from tests.support.defaults import default_stack
from tests.support.redis_proc import free_port
from tests.support.waiting import finish, wait_until

APP = "tests.apps.hardening_app"
ROOT = Path(__file__).resolve().parents[2]
WF = "/v1.0/workflows/dapr"
TOKEN = "a-token-of-thirty-two-characters"
LOCAL = "http://localhost"
# What a cross-site page can send without a CORS preflight.
FORGEABLE = {
    "form": {"Content-Type": "application/x-www-form-urlencoded"},
    "multipart": {"Content-Type": "multipart/form-data; boundary=x"},
    "text/plain": {"Content-Type": "text/plain"},
    "no content type": {},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with default_stack(tmp_path_factory.mktemp("http_browsers"), concurrency=2) as running:
        yield running


def api(stack: SimpleNamespace, **changes: Any) -> TestClient:
    settings = stack.settings.replace(**changes)
    return TestClient(create_app(settings, WorkflowClient(settings=settings)), base_url=LOCAL)


def refused(r: httpx.Response, status: int, code: str, *needles: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["errorCode"] == code, body
    for needle in needles:
        assert needle in body["message"], (needle, body)


def pool_serves_others(stack: SimpleNamespace) -> None:
    iid = stack.client.schedule_new_workflow("hard_ok", input="still serving")
    assert finish(stack.client, iid).output == "still serving"
    assert stack.pool.proc.poll() is None, stack.pool.log_tail()


def gated(stack: SimpleNamespace, instance_id: str) -> None:
    stack.client.schedule_new_workflow("hard_gated", input={"gate": instance_id, "value": 1}, instance_id=instance_id)
    wait_until(lambda: stack.client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.RUNNING)


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no token", "Basic login held by the browser"])
def test_forgeable_requests_to_state_changing_routes_are_refused(stack, token):
    target = f"forge-target-{'login' if token else 'open'}"
    gated(stack, target)
    auth = ("anyone", TOKEN) if token else None
    with api(stack, api_token=token) as http:
        for kind, headers in FORGEABLE.items():
            for path in (f"{WF}/hard_ok/start?instanceID=forged-{kind.replace(' ', '-').replace('/', '-')}",
                         f"{WF}/{target}/terminate", f"{WF}/{target}/pause", f"{WF}/{target}/raiseEvent/go",
                         f"{WF}/{target}/purge", "/api/runs/" + target + "/terminate"):
                r = http.post(path, content=b"x=1" if headers else b"", headers=headers, auth=auth)
                refused(r, 415, "ERR_FORGEABLE_REQUEST", "Content-Type: application/json", "X-Orchestrator-Client")
        # Nothing was started, terminated or paused.
        assert stack.client.get_workflow_state("forged-form") is None
        assert stack.client.get_workflow_state(target).runtime_status == WorkflowStatus.RUNNING
        # A program's request, with JSON (or the client header), does what it asks.
        assert http.post(f"{WF}/{target}/terminate", json={"why": "test"}, auth=auth).status_code == 202
        assert finish(stack.client, target, WorkflowStatus.TERMINATED).output == {"why": "test"}
        stack.redis.set(f"hard:open:{target}", 1)  # let its activity (still running) end
        assert http.post(f"{WF}/{target}/purge", headers={"X-Orchestrator-Client": "cli"}, auth=auth).status_code == 202
    pool_serves_others(stack)


def test_a_json_request_from_another_sites_page_is_refused_by_its_origin(stack):
    with api(stack) as http:
        r = http.post(f"{WF}/hard_ok/start?instanceID=from-evil", json=1, headers={"Origin": "https://evil.example"})
        refused(r, 403, "ERR_FORGEABLE_REQUEST", "cross-origin request from 'https://evil.example'")
        assert stack.client.get_workflow_state("from-evil") is None
        same = http.post(f"{WF}/hard_ok/start?instanceID=from-self", json=1, headers={"Origin": LOCAL})
        assert same.status_code == 202
    assert finish(stack.client, "from-self").output == 1


def test_a_loopback_bound_api_answers_only_loopback_host_names(stack):
    """DNS rebinding: evil.example resolving to 127.0.0.1 makes the browser send Host: evil.example."""
    iid = stack.client.schedule_new_workflow("hard_ok", input="private", instance_id="rebound")
    finish(stack.client, iid)
    with api(stack) as http:
        for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
            refused(http.get(f"{WF}/rebound", headers={"Host": host}), 421, "ERR_HOST_NOT_ALLOWED", repr(host))
            refused(http.post(f"{WF}/rebound/purge", json=None, headers={"Host": host}), 421, "ERR_HOST_NOT_ALLOWED")
        for host in ("localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080", "app.localhost"):
            assert http.get(f"{WF}/rebound", headers={"Host": host}).status_code == 200, host
    with api(stack, api_allowed_hosts="orchestrator.internal, proxy.lan") as http:
        assert http.get(f"{WF}/rebound", headers={"Host": "orchestrator.internal"}).status_code == 200
    with api(stack, api_host="0.0.0.0", api_token=TOKEN) as http:  # public bind: the token guards it
        r = http.get(f"{WF}/rebound", headers={"Host": "api.example.com", "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
    assert stack.client.get_workflow_state("rebound").runtime_status == WorkflowStatus.COMPLETED


@pytest.mark.parametrize("body, needle", [
    (b'{"n": 123456789012345678901234567890}', "is the integer 123456789012345678901234567890, beyond the 64-bit"),
    (b"[" * 100_000 + b"]" * 100_000, "nests arrays and objects more than 100 levels deep"),
    (b"[" * 150 + b"]" * 150, "nests lists and dicts more than 100 levels deep"),
    (b"9" * 5000, "cannot be read: Exceeds the limit (4300 digits)"),
    (b'{"x": NaN}', "holds NaN, which is not JSON"),
    (b"[Infinity]", "holds Infinity, which is not JSON"),
    (b"-Infinity", "holds -Infinity, which is not JSON"),
    (b"1e400", "is inf, which JSON cannot represent"),
    (b'"\\ud800"', "holds the lone surrogate"),
], ids=["65-bit integer", "100,000 deep", "150 deep", "5000 digits", "NaN", "Infinity", "-Infinity", "1e400",
        "lone surrogate"])
def test_bodies_that_break_the_payload_rules_get_400_naming_the_problem(stack, body, needle):
    with api(stack) as http:
        for path in (f"{WF}/hard_ok/start?instanceID=bad-body", f"{WF}/some-id/raiseEvent/go",
                     f"{WF}/some-id/terminate", "/api/runs/some-id/raise"):
            r = http.post(path, content=body, headers={"Content-Type": "application/json"})
            refused(r, 400, "ERR_MALFORMED_REQUEST", needle)
        # Sent with the client header instead of a JSON content type, Dapr's routes parse it the same way.
        r = http.post(f"{WF}/hard_ok/start?instanceID=bad-body", content=body,
                      headers={"X-Orchestrator-Client": "script"})
        refused(r, 400, "ERR_MALFORMED_REQUEST", needle)
    assert stack.client.get_workflow_state("bad-body") is None
    pool_serves_others(stack)


def test_an_oversized_body_is_still_413(stack):
    with api(stack, max_payload_bytes=1000) as http:
        r = http.post(f"{WF}/hard_ok/start", content=b'"' + b"z" * 2000 + b'"',
                      headers={"Content-Type": "application/json"})
        refused(r, 413, "ERR_PAYLOAD_TOO_LARGE", "over the limit of 1000")


def test_the_real_server_on_loopback_refuses_forged_requests_over_tcp(stack):
    port = free_port()
    env = {**os.environ, "REDIS_URL": stack.url, "PYTHONPATH": str(ROOT)}
    env.pop("ORCH_API_TOKEN", None)
    log = stack.tmp / "api.log"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), what="the API server")
        refused(httpx.get(f"{base}{WF}/x", headers={"Host": "rebound.evil.example"}), 421, "ERR_HOST_NOT_ALLOWED")
        refused(httpx.post(f"{base}{WF}/hard_ok/start?instanceID=tcp-forged", content=b"a=1",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
                "ERR_FORGEABLE_REQUEST")
        r = httpx.post(f"{base}{WF}/hard_ok/start?instanceID=tcp-ok", json="over tcp")
        assert r.status_code == 202, r.text
        assert finish(stack.client, "tcp-ok").output == "over tcp"
        assert stack.client.get_workflow_state("tcp-forged") is None
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0, log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
