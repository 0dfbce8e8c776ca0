"""The HTTP API for operating runs: rerun from a step (async request-reply), batch actions, starting
with a reuse-id policy and an app id, listing with payloads. Real pools, the app under TestClient."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.integration.test_http import WF, assert_error, http, poll, wait_status  # noqa: F401 - fixture

API = "/api/instances"


def test_rerun_answers_202_with_the_new_instance_and_its_location(http: TestClient) -> None:  # noqa: F811
    assert http.post(f"{WF}/naps/start?instanceID=n-1", json=3).status_code == 202
    wait_status(http, "n-1", "COMPLETED")

    r = http.post(f"{API}/n-1/rerun", json={"from_step": 2, "new_instance_id": "n-1-again"})
    assert r.status_code == 202 and r.json() == {"instanceID": "n-1-again"}, r.text
    assert r.headers["location"] == f"http://localhost{API}/n-1-again" and r.headers["retry-after"] == "1"
    done = poll(lambda: http.get(r.headers["location"]).json(), lambda s: s["runtime_status"] == "COMPLETED")
    assert done["rerun_of"] == "n-1" and done["output"] == 0.6 and done["input"] == 3
    events = http.get(f"{API}/n-1-again/history").json()["events"]
    original = http.get(f"{API}/n-1/history").json()["events"]
    first = next(e for e in original if e["kind"] == "TaskCompleted")
    assert first in events  # call 1's recorded result, reused

    fresh = http.post(f"{API}/n-1/rerun", json={"input": 1})
    assert fresh.status_code == 202
    assert poll(lambda: http.get(fresh.headers["location"]).json(),
                lambda s: s["runtime_status"] == "COMPLETED")["output"] == 0.2

    assert_error(http.post(f"{API}/n-1/rerun", json={"from_step": 7}), 400, "ERR_MALFORMED_REQUEST",
                 "from_step must be between 1 and 3")
    assert_error(http.post(f"{API}/n-1/rerun", json={"from_step": 0}), 400, "ERR_MALFORMED_REQUEST", "from_step")
    assert_error(http.post(f"{API}/ghost/rerun", json={}), 404, "ERR_INSTANCE_ID_NOT_FOUND", "ghost")
    assert http.post(f"{WF}/approval/start?instanceID=a-1", json={}).status_code == 202
    wait_status(http, "a-1", "RUNNING")
    assert_error(http.post(f"{API}/a-1/rerun", json={}), 409, "ERR_RERUN_WORKFLOW", "only a finished instance")


def test_batch_terminate_start_policies_and_listing_with_payloads(http: TestClient) -> None:  # noqa: F811
    for i in range(2):
        assert http.post(f"{WF}/approval/start?instanceID=b-{i}", json={"i": i}).status_code == 202
    for i in range(2):
        wait_status(http, f"b-{i}", "RUNNING")
    assert_error(http.post(f"{API}/batch/terminate", json={}), 400, "ERR_MALFORMED_REQUEST", "at least one filter")
    preview = http.post(f"{API}/batch/terminate", json={"name": "approval", "dry_run": True}).json()
    assert preview["matched"] == 2 and preview["done"] == []
    done = http.post(f"{API}/batch/terminate", json={"name": "approval", "status": "RUNNING"}).json()
    assert sorted(done["done"]) == ["b-0", "b-1"]
    for i in range(2):
        wait_status(http, f"b-{i}", "TERMINATED")

    assert http.post(f"{WF}/hello/start?instanceID=same", json="one").status_code == 202
    wait_status(http, "same", "COMPLETED")
    assert_error(http.post(f"{WF}/hello/start?instanceID=same", json="two"), 409, "ERR_START_WORKFLOW", "already exists")
    r = http.post(f"{WF}/hello/start?instanceID=same&reuseIdPolicy=replace&appId=default", json="two")
    assert r.status_code == 202
    assert poll(lambda: http.get(f"{API}/same").json(), lambda s: s["runtime_status"] == "COMPLETED")["output"] == "hello two"
    listed: Any = http.get(f"{API}?name=hello").json()["items"]
    assert listed[0]["input"] is None
    listed = http.get(f"{API}?name=hello&fetch_payloads=true").json()["items"]
    assert listed[0]["input"] == "two" and listed[0]["output"] == "hello two"
