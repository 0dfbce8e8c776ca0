"""Worker liveness (issue 14), with the engine's DEFAULT settings (visibility_timeout 3600 s): a pool
killed with SIGKILL has its work resumed by the next pool within seconds, not after the timeout."""

from __future__ import annotations

import re
import time
from collections import Counter

from orchestrator import WorkflowStatus
from tests.apps.reliability_app import executions
from tests.support.store_keys import KEYS
from tests.support.waiting import wait_until

CORE = "tests.apps.core_app"
REL = "tests.apps.reliability_app"


def _state(client, iid, timeout=60):
    return client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)


def test_a_sigkilled_pool_s_chain_continues_within_15_s_of_a_new_pool(client, start_pool, redis_client):
    pool = start_pool(CORE, concurrency=2)
    iid = client.schedule_new_workflow("slow_chain", input=20)

    def completions():
        return sum(e["kind"] == "TaskCompleted" for e in client.get_workflow_history(iid))

    wait_until(lambda: completions() >= 5, what="five completions")
    pool.kill()
    began = time.monotonic()
    new = start_pool(CORE, concurrency=2)
    pool_start = time.monotonic() - began
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    assert state.output == sum(range(20))
    history = client.get_workflow_history(iid)
    stamps = [e["ts"] for e in history if e["kind"] in ("TaskCompleted", "StepStarted")]
    gap = max(b - a for a, b in zip(stamps, stamps[1:])) / 1000
    # The kill's gap: the old pool's heartbeat expires (10 s), the next sweep (2 s) reaps it.
    assert gap < 15 + pool_start, f"the chain stood still {gap:.1f} s (pool start {pool_start:.1f} s)"
    per_seq = Counter(e["seq"] for e in history if e["kind"] == "TaskCompleted")
    assert sorted(per_seq) == list(range(1, 21)) and set(per_seq.values()) == {1}
    log = new.log_path.read_text()
    assert re.search(r"worker process \S+ \(app 'default', pid \d+\) stopped heartbeating; put back \d+ broker", log)
    assert "background duties: unexpected error" not in log
    # The dead processes are gone from the registry; the new pool's are there.
    live = client.store.liveness.processes()
    assert live and all(p.heartbeat >= int(time.time() * 1000) - 10_000 for p in live)


def test_a_long_activity_of_a_killed_pool_runs_again_after_the_process_expiry(client, start_pool, redis_client):
    pool = start_pool(REL, concurrency=2)
    iid = client.schedule_new_workflow("rel_one", input={"value": "done", "sleep": 4})
    wait_until(lambda: executions(redis_client, iid, 1) == 1, what="the activity to start")
    pool.kill()
    killed = time.monotonic()
    start_pool(REL, concurrency=2)
    state = _state(client, iid, timeout=40)
    assert state.runtime_status == WorkflowStatus.COMPLETED and state.output == "done"
    assert time.monotonic() - killed < 30  # not visibility_timeout (3600 s)
    assert executions(redis_client, iid, 1) == 2  # at least once: the lost run, then the retry
    assert [e["seq"] for e in client.get_workflow_history(iid) if e["kind"] == "TaskCompleted"] == [1]
    assert all(redis_client.hlen(s.claims) == 0 for s in KEYS.shards())  # no claim, no lost count left


def test_a_copy_of_an_attempt_a_live_process_runs_is_skipped(client, start_pool, redis_client):
    """Kombu redelivers a message after visibility_timeout even while its activity still runs; the
    copy finds the attempt claimed by a live process and is dropped: it runs once."""
    from orchestrator.store import records
    from orchestrator.worker.celery_app import CeleryPublisher, create_celery_app

    pool = start_pool(REL, concurrency=2)
    iid = client.schedule_new_workflow("rel_one", input={"value": "once", "sleep": 3}, instance_id="copied")
    wait_until(lambda: executions(redis_client, iid, 1) == 1, what="the activity to start")
    meta = client.store.get_meta(iid)
    record = records.activity_record(meta, 1, "rel_echo", {"value": "once", "sleep": 3}, None, 1)
    CeleryPublisher(create_celery_app(client.settings)).send_activity(record, "default")
    state = _state(client, iid)
    assert state.runtime_status == WorkflowStatus.COMPLETED and state.output == "once"
    assert executions(redis_client, iid, 1) == 1
    wait_until(lambda: "this copy is skipped" in pool.log_path.read_text(), what="the copy to be skipped")


def test_pools_lists_the_live_processes_and_a_killed_pool_disappears_within_its_expiry(client, start_pool,
                                                                                         redis_server):
    import json
    import subprocess
    import sys

    from fastapi.testclient import TestClient

    from orchestrator import Settings
    from orchestrator.http import create_app
    from tests.conftest import ROOT, pool_environment
    from tests.support.defaults import API_CLIENT

    def cli(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "orchestrator", "pools", "--json", *args], capture_output=True,
                             text=True, env=pool_environment(redis_server.url), cwd=ROOT, timeout=60, check=True)
        return json.loads(out.stdout)

    doomed = start_pool(CORE, app_id="default", concurrency=2)
    keeper = start_pool(REL, app_id="rel", concurrency=1)
    wait_until(lambda: {p["pid"] for p in cli()["items"] if p["kind"] == "pool"} >= {doomed.proc.pid, keeper.proc.pid},
               what="both pools to register")
    listed = cli()["items"]
    mine = next(p for p in listed if p["pid"] == doomed.proc.pid)
    assert mine["app_id"] == "default" and mine["alive"] and mine["queues"] == ["orchestrator.default"]
    assert "slow_chain" in mine["workflows"] and "slow_add" in mine["activities"]
    children = [p for p in listed if p["kind"] == "worker" and p["app_id"] == "default"]
    assert all(p["host"] == mine["host"] for p in children)
    api = TestClient(create_app(Settings(redis_url=redis_server.url)), **API_CLIENT)
    assert {p["process_id"] for p in api.get("/api/pools").json()["items"]} == {p["process_id"] for p in cli()["items"]}
    assert any(p["pid"] == keeper.proc.pid for p in api.get("/dashboard/api/pools").json()["items"])
    # A second module on app 'default': the listing names what each of its pools lacks; --app filters.
    other = start_pool(REL, app_id="default", concurrency=1)
    wait_until(lambda: cli("--app", "default")["mismatches"], what="the mismatch to be listed")
    rel = cli("--app", "rel")
    assert {p["app_id"] for p in rel["items"]} == {"rel"} and rel["mismatches"] == []
    assert keeper.proc.pid in {p["pid"] for p in rel["items"]}
    [mismatch] = cli("--app", "default")["mismatches"]
    lacking = {m["pid"]: m for m in mismatch["lacking"]}
    assert "slow_chain" in lacking[other.proc.pid]["workflows"] and "rel_one" in lacking[doomed.proc.pid]["workflows"]
    assert "rel_echo" in lacking[doomed.proc.pid]["activities"] and "slow_add" in lacking[other.proc.pid]["activities"]
    assert f"process {mismatch['lacking'][0]['process_id']} (" in mismatch["message"]
    text = subprocess.run([sys.executable, "-m", "orchestrator", "pools"], capture_output=True, text=True,
                          env=pool_environment(redis_server.url), cwd=ROOT, timeout=60, check=True)
    assert "warning: the pools (2) of app 'default' register different names: process " in text.stderr
    assert "warning" not in text.stdout and "APP" in text.stdout

    def shape(body: dict) -> dict:  # heartbeats and claims move between two reads
        return {**body, "items": sorted((p["process_id"], p["app_id"], p["kind"]) for p in body["items"])}
    http, board = (api.get(f"{base}/api/pools", params={"app": "default"}).json() for base in ("", "/dashboard"))
    assert shape(http) == shape(board) and http["mismatches"] == [mismatch]
    assert {p["app_id"] for p in http["items"]} == {"default"}
    pid = doomed.proc.pid
    doomed.kill()
    began = time.monotonic()
    # The keeper's sweeper reaps it: gone from the registry within the expiry (10 s) plus a sweep.
    wait_until(lambda: all(p["pid"] != pid for p in cli()["items"]), timeout=25, what="the killed pool to disappear")
    assert time.monotonic() - began < 16
    assert any(p["pid"] == keeper.proc.pid for p in cli()["items"])
    assert cli("--app", "default")["mismatches"] == []  # the other module's pool is alone in its app now


def test_two_modules_on_one_app_id_are_warned_of_and_every_run_lands_where_its_code_is(client, start_pool,
                                                                                         redis_client):
    first = start_pool(CORE, app_id="default", concurrency=2)
    wait_until(lambda: any(p.kind == "pool" for p in client.store.liveness.processes()), what="the first pool")
    second = start_pool(REL, app_id="default", concurrency=2)
    log = second.log_path.read_text()
    assert "this pool joins app 'default', whose other pools (1) register a different set of names" in log
    assert "this pool lacks the workflows ['" in log and "'slow_chain'" in log
    chains = [client.schedule_new_workflow("chain", input=5) for _ in range(6)]
    ones = [client.schedule_new_workflow("rel_one", input={"value": i}) for i in range(6)]
    for iid in chains:
        state = _state(client, iid)
        assert state.runtime_status == WorkflowStatus.COMPLETED and state.output == 10, state.failure_details
    for i, iid in enumerate(ones):
        state = _state(client, iid)
        assert state.runtime_status == WorkflowStatus.COMPLETED and state.output == i, state.failure_details
    logs = first.log_path.read_text() + second.log_path.read_text()
    assert "back to the queue" in logs  # some landed on the pool without their code, and went back


def test_an_in_process_runtime_registers_heartbeats_and_leaves_at_shutdown(client, redis_server):
    from orchestrator import WorkflowRuntime

    wfr = WorkflowRuntime(redis_url=redis_server.url)

    @wfr.activity(name="inproc_echo")
    def echo(ctx, value):
        return value

    @wfr.workflow(name="inproc_wf")
    def wf(ctx, value):
        return (yield ctx.call_activity(echo, input=value))

    wfr.start()
    try:
        inproc = [p for p in client.store.liveness.processes() if p.kind == "inproc"]
        assert len(inproc) == 1 and "inproc_wf" in inproc[0].workflows and inproc[0].activities == ["inproc_echo"]
        iid = client.schedule_new_workflow("inproc_wf", input=3)
        assert _state(client, iid).output == 3
        first = inproc[0].heartbeat
        wait_until(lambda: client.store.liveness.processes()[0].heartbeat > first, what="a second heartbeat")
    finally:
        wfr.shutdown()
    assert not [p for p in client.store.liveness.processes() if p.kind == "inproc"]
