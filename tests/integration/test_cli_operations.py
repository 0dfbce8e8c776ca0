"""The command line for operating runs: rerun from a step, batch actions on a filtered set, ISO times,
starting with a reuse-id policy and an app, listing with payloads. Real pools, real processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from orchestrator import WorkflowClient, WorkflowStatus
from tests.integration.test_cli import APP, ROOT, cli_env

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def orch(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT, env=cli_env(url),
                          capture_output=True, text=True, timeout=90, input=stdin)


def ok_json(url: str, *args: str) -> Any:
    run = orch(url, *args, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def test_rerun_from_a_step_reuses_the_earlier_calls(redis_server: Any, client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP)
    client.schedule_new_workflow("naps", input=3, instance_id="naps-1")
    assert client.wait_for_workflow_completion("naps-1", timeout_in_seconds=30).runtime_status == WorkflowStatus.COMPLETED

    state = ok_json(redis_server.url, "rerun", "naps-1", "--from-step", "3", "--new-id", "naps-1b", "--wait", "--quiet")
    assert state["instance_id"] == "naps-1b" and state["runtime_status"] == "COMPLETED" and state["output"] == 0.6
    assert state["rerun_of"] == "naps-1"
    history = client.get_workflow_history("naps-1b")
    original = client.get_workflow_history("naps-1")
    reused = [e for e in history if e["kind"] == "TaskCompleted"][:2]
    assert reused == [e for e in original if e["kind"] == "TaskCompleted"][:2]  # calls 1 and 2 were not run again

    started = ok_json(redis_server.url, "rerun", "naps-1", "--input", "1")
    assert started["rerun_of"] == "naps-1" and started["from_step"] == 1
    assert client.wait_for_workflow_completion(started["instance_id"], timeout_in_seconds=30).output == 0.2

    running = orch(redis_server.url, "rerun", "naps-1b", "--from-step", "9", "--json")
    assert running.returncode == 1 and "from_step must be between 1 and 3" in json.loads(running.stdout)["error"]["message"]


def test_batch_terminate_acts_on_what_the_filter_matches_after_showing_the_count(
        redis_server: Any, client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP)
    for i in range(3):
        client.schedule_new_workflow("approval", input={"n": i}, instance_id=f"appr-{i}")
    client.schedule_new_workflow("hello", input="x", instance_id="hello-1")
    for i in range(3):
        client.wait_for_workflow_start(f"appr-{i}", timeout_in_seconds=30)
    client.wait_for_workflow_completion("hello-1", timeout_in_seconds=30)

    assert orch(redis_server.url, "batch", "terminate").returncode == 2  # no filter: refused
    preview = ok_json(redis_server.url, "batch", "terminate", "--name", "approval", "--status", "RUNNING", "--dry-run")
    assert preview["matched"] == 3 and preview["done"] == []
    unattended = orch(redis_server.url, "batch", "terminate", "--name", "approval")
    assert unattended.returncode == 2 and "3 instance(s) match; pass --yes" in unattended.stderr
    assert all(client.get_workflow_state(f"appr-{i}").runtime_status == WorkflowStatus.RUNNING for i in range(3))

    result = ok_json(redis_server.url, "batch", "terminate", "--name", "approval", "--id-prefix", "appr-", "--yes")
    assert sorted(result["done"]) == ["appr-0", "appr-1", "appr-2"] and result["failed"] == {}
    for i in range(3):
        state = client.wait_for_workflow_completion(f"appr-{i}", timeout_in_seconds=30)
        assert state.runtime_status == WorkflowStatus.TERMINATED
    assert client.get_workflow_state("hello-1").runtime_status == WorkflowStatus.COMPLETED

    again = ok_json(redis_server.url, "batch", "terminate", "--name", "approval", "--yes")
    assert again["done"] == [] and sorted(again["skipped"]) == ["appr-0", "appr-1", "appr-2"]
    purged = orch(redis_server.url, "batch", "purge", "--status", "TERMINATED", "--yes")
    assert purged.returncode == 0 and "Purge: 3 done, 0 skipped, 0 failed of 3 matched" in purged.stdout
    assert client.get_workflow_state("appr-0") is None


def test_every_time_the_cli_prints_is_iso_8601_with_its_zone(redis_server: Any, client: WorkflowClient,
                                                            start_pool: Any) -> None:
    start_pool(APP)
    client.schedule_new_workflow("doomed", input="no", instance_id="doomed-1")
    client.wait_for_workflow_completion("doomed-1", timeout_in_seconds=30)

    history = ok_json(redis_server.url, "history", "doomed-1")
    assert history and all(ISO.match(e["ts"]) for e in history)
    human = orch(redis_server.url, "history", "doomed-1").stdout
    stamps = re.findall(r"^\d+\s+(\S+)", human, re.M)
    assert stamps and all(ISO.match(t) for t in stamps) and not re.search(r"\b1\d{12}\b", human)  # no epoch ms
    listed = orch(redis_server.url, "list").stdout
    row = next(line for line in listed.splitlines() if line.startswith("doomed-1"))
    created, updated = row.split()[3:5]
    assert ISO.match(created) and ISO.match(updated)
    assert "PermissionError: Activity task #1 ('refuse') f" in row
    status = orch(redis_server.url, "status", "doomed-1").stdout
    assert all(ISO.match(line.split()[1]) for line in status.splitlines() if line.startswith(("created", "updated")))
    state = ok_json(redis_server.url, "status", "doomed-1")
    assert state["created_at"].endswith("+00:00")


def test_start_takes_a_reuse_id_policy_an_app_and_a_start_time_and_list_shows_inputs(
        redis_server: Any, client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP)
    first = ok_json(redis_server.url, "start", "hello", "--input", '"one"', "--id", "same", "--wait", "--quiet")
    assert first["output"] == "hello one"
    taken = orch(redis_server.url, "start", "hello", "--input", '"two"', "--id", "same", "--json")
    assert taken.returncode == 1 and "reuse_id_policy" in json.loads(taken.stdout)["error"]["message"]
    second = ok_json(redis_server.url, "start", "hello", "--input", '"two"', "--id", "same",
                     "--reuse-id-policy", "replace", "--app-id", "default", "--wait", "--quiet")
    assert second["output"] == "hello two"
    later = ok_json(redis_server.url, "start", "hello", "--input", '"later"', "--start-at", "2999-01-01T00:00:00Z")
    assert client.get_workflow_state(later["instance_id"]).runtime_status == WorkflowStatus.PENDING
    bare = ok_json(redis_server.url, "list", "--name", "hello", "--status", "COMPLETED")
    assert bare[0]["input"] is None  # payloads are left in Redis unless asked for
    full = ok_json(redis_server.url, "list", "--name", "hello", "--status", "COMPLETED", "--with-payloads")
    assert full[0]["input"] == "two" and full[0]["output"] == "hello two"
