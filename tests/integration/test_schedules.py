"""Durable schedules with real pools: exactly once per nominal time across pools and a Redis restart,
overlap policies, backfill, time skipping, and the CLI / HTTP surfaces."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator import WorkflowClient
from orchestrator.core.schedule import run_instance_id
from orchestrator.testing import skip_schedules
from tests.conftest import ROOT
from tests.support.waiting import wait_until

APP = "tests.apps.schedule_app"


def _nominal(instance_id: str, schedule_id: str) -> datetime:
    stamp = instance_id.removeprefix(f"{schedule_id}-").removesuffix("Z")
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def test_every_second_across_two_pools_and_a_redis_restart_fires_each_second_once(
        redis_server: Any, redis_client: Any, client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP, concurrency=2)
    start_pool(APP, concurrency=2)
    created = client.create_schedule("each-second", "tick", every=1, input="each-second", overlap="allow_all")
    first_nominal = created.upcoming[0]
    wait_until(lambda: client.get_schedule("each-second").state.fired >= 4, timeout=30, what="4 runs before the restart")
    redis_server.kill()  # a crash: the pools keep trying
    time.sleep(1.5)
    redis_server.start()
    time.sleep(0.5)
    wait_until(lambda: client.get_schedule("each-second").state.fired >= 12, timeout=60, what="runs after the restart")
    client.pause_schedule("each-second")
    info = client.get_schedule("each-second")
    last_nominal = info.state.last_nominal_ms
    assert last_nominal is not None
    # Every nominal second from the first to the last has exactly one instance, and each ran its
    # activity once: the outage's seconds were caught up (within the catch-up window).
    expected = [run_instance_id("each-second", t) for t in range(first_nominal, last_nominal + 1, 1000)]
    for instance_id in expected:
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
        assert state is not None and state.runtime_status.name == "COMPLETED", (instance_id, state and state.failure_details)
    ids = sorted(s.instance_id for s in client.list_workflows(name="tick", limit=1000))
    assert ids == sorted(expected)
    executions = [v.decode().split("|")[0] for v in redis_client.lrange("test:runs:each-second", 0, -1)]
    assert sorted(set(executions)) == sorted(expected)
    pids = {v.decode().split("|")[1] for v in redis_client.lrange("test:runs:each-second", 0, -1)}
    assert len(pids) >= 2, "both pools should have run some"
    # Starts came from both pools' duties: each run's first event is no later than ~1 s past its nominal time
    # except those caught up after the outage (checked from history, not from timing here).
    late = [i for i in expected
            if client.get_workflow_history(i)[0]["ts"] - int(_nominal(i, "each-second").timestamp() * 1000) > 1500]
    assert len(late) <= 6, f"only the outage's seconds start late: {late}"


def _runs(client: WorkflowClient, name: str) -> list[Any]:
    return sorted(client.list_workflows(name=name, limit=1000), key=lambda s: s.instance_id)


@pytest.mark.parametrize("policy", ["skip", "buffer_one", "cancel_other", "terminate_other"])
def test_overlap_policies_with_real_pools(client: WorkflowClient, start_pool: Any, policy: str) -> None:
    start_pool(APP, concurrency=2)
    sid = f"overlap-{policy.replace('_', '-')}"
    client.create_schedule(sid, "slow_tick", every=1, input={"tag": sid, "seconds": 2.5}, overlap=policy)
    wait_until(lambda: client.get_schedule(sid).state.fired >= 3, timeout=40, what="three runs")
    client.pause_schedule(sid)
    info = client.get_schedule(sid).to_dict()
    runs = [s for s in _runs(client, "slow_tick") if s.instance_id.startswith(sid)]
    if policy == "terminate_other":
        # Each new run terminated the one before: at most the newest is not TERMINATED.
        wait_until(lambda: all(client.get_workflow_state(s.instance_id).runtime_status.name in ("TERMINATED", "COMPLETED")
                               for s in runs[:-1]), timeout=20, what="earlier runs terminated")
        assert sum(client.get_workflow_state(s.instance_id).runtime_status.name == "TERMINATED"
                   for s in runs[:-1]) >= 2
        return
    # skip / buffer_one / cancel_other: no two runs ever overlap (from their histories' first and last events).
    for s in runs:
        client.wait_for_workflow_completion(s.instance_id, timeout_in_seconds=30)
    if policy == "cancel_other":  # each new nominal time ended the run before it, then waited for it to end
        assert sum(client.get_workflow_state(s.instance_id).runtime_status.name == "TERMINATED" for s in runs) >= 1
    spans = []
    for s in runs:
        history = client.get_workflow_history(s.instance_id)
        spans.append((history[0]["ts"], history[-1]["ts"]))
    spans.sort()
    for (_, end), (begin, _) in zip(spans, spans[1:]):
        assert begin >= end, f"{policy}: a run started before the previous ended: {spans}"
    if policy != "cancel_other":
        assert info["skipped"] >= 2


def test_backfill_trigger_and_time_skipping(client: WorkflowClient, start_pool: Any) -> None:
    start_pool(APP, concurrency=2)
    client.create_schedule("daily", "tick", cron="0 6 * * *", timezone="Europe/Paris", input="daily")
    # Time skipping: the next 06:00 Paris fires now, at the pools' next poll, under its own id.
    assert skip_schedules(client, "daily") == 1
    nxt = client.get_schedule("daily").upcoming[0]
    first = wait_until(lambda: client.get_schedule("daily").state.last_id, timeout=20, what="the skipped-to run")
    assert first == run_instance_id("daily", nxt)
    assert client.wait_for_workflow_completion(first, timeout_in_seconds=30).runtime_status.name == "COMPLETED"
    # Backfill the last three days: three runs, each its own nominal time; again: nothing new.
    now = datetime.now(UTC)
    filled = client.backfill_schedule("daily", now - timedelta(days=3), now)
    assert len(filled["started"]) == 3
    assert client.backfill_schedule("daily", now - timedelta(days=3), now)["started"] == []
    for instance_id in filled["started"]:
        assert client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30).runtime_status.name == \
            "COMPLETED"
    manual = client.trigger_schedule("daily")
    assert manual is not None and client.wait_for_workflow_completion(manual, timeout_in_seconds=30)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "--redis-url", url, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_schedule_commands(redis_server: Any) -> None:
    url = redis_server.url
    made = _cli(url, "schedule", "create", "nightly", "tick", "--cron", "0 2 * * *", "--timezone", "Europe/Paris",
                "--input", '"nightly"', "--app-id", "default", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["next_runs"][0].endswith(":00:00.000Z")
    listed = _cli(url, "schedule", "list")
    assert "nightly" in listed.stdout and "0 2 * * *" in listed.stdout
    assert _cli(url, "schedule", "pause", "nightly").returncode == 0
    assert json.loads(_cli(url, "schedule", "show", "nightly", "--json").stdout)["paused"] is True
    bad = _cli(url, "schedule", "create", "bad", "tick", "--cron", "61 * * * *")
    assert bad.returncode == 1 and "minute 61 is out of range" in bad.stderr
    missing = _cli(url, "schedule", "resume", "nope")
    assert missing.returncode == 1 and "no schedule with id 'nope'" in missing.stderr
    assert _cli(url, "schedule", "delete", "nightly").returncode == 0


def test_http_schedule_routes(redis_server: Any) -> None:
    from fastapi.testclient import TestClient

    from orchestrator import Settings
    from orchestrator.http.app import create_app
    from tests.support.defaults import API_CLIENT

    api = TestClient(create_app(Settings(redis_url=redis_server.url)), **API_CLIENT)
    made = api.post("/api/schedules", json={"schedule_id": "hourly", "workflow": "tick", "cron": "@hourly",
                                            "app_id": "default", "input": "x"})
    assert made.status_code == 201, made.text
    assert api.post("/api/schedules", json={"schedule_id": "hourly", "workflow": "tick", "cron": "@hourly",
                                            "app_id": "default"}).status_code == 409
    assert api.get("/api/schedules").json()["items"][0]["schedule_id"] == "hourly"
    assert api.post("/api/schedules/hourly/pause", json={"note": "n"}).json()["paused"] is True
    assert api.post("/api/schedules/hourly/resume").json()["paused"] is False
    bad = api.post("/api/schedules", json={"schedule_id": "b", "workflow": "tick", "every_seconds": 1,
                                           "overlap": "queue"})
    assert bad.status_code == 400 and "overlap must be one of" in bad.json()["message"]
    assert api.get("/api/schedules/nope").status_code == 404
    assert api.delete("/api/schedules/hourly").status_code == 204


def test_cli_start_with_priority_and_dedup_id(redis_server: Any) -> None:
    url = redis_server.url
    args = ("start", "tick", "--app-id", "default", "--input", '"x"', "--priority", "3", "--dedup-id", "nightly-1")
    first, again = _cli(url, *args), _cli(url, *args)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.strip() == again.stdout.strip()  # the live run's id, not a second run
    assert WorkflowClient(redis_url=url).store.get_meta(first.stdout.strip()).priority == 3
    bad = _cli(url, "start", "tick", "--app-id", "default", "--priority", "10")
    assert bad.returncode == 2 and "0<=x<=9" in bad.stderr
