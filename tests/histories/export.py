"""Export the golden histories: run every ``workers/`` example for real and keep what it recorded.

``python -m tests.histories.export`` starts a private ``redis-server`` (never the shared one) and
real worker pools (``orchestrator worker MODULE``, prefork, the engine's default settings), drives
each example through the paths it has (success, failure, compensation, approval, timeout, events,
continue-as-new, children on another app), and writes each instance's ``client.export_history``
to ``tests/histories/<name>.json``. ``tests/unit/test_golden_histories.py`` replays them all on every
run, so a change to the engine or to an example that would break instances recorded by the released
code fails the suite. Re-export only on purpose (a deliberate change of an example), and say so in
the commit.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from orchestrator import DaprWorkflowClient
from orchestrator.embedded import EmbeddedRedis
from orchestrator.testing import skip_timers, wait_for_timers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run_module(url: str, logs: Path, module: str, app_id: str, drive: Callable[[DaprWorkflowClient], list[str]],
               client: DaprWorkflowClient) -> dict[str, dict]:
    """Run ``module``'s pool alone, drive its instances, export them once finished."""
    log = open(logs / f"{module}.log", "ab")
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", module, "--app-id", app_id, "-c", "2",
                             "-l", "INFO"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _registered(client, module, proc)
        ids = drive(client)
        return {iid: client.export_history(iid) for iid in ids}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def _registered(client: DaprWorkflowClient, module: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the pool of ``module`` has announced its workflows (it does as it starts)."""
    names = list(importlib.import_module(module).wfr.registry.workflows)
    deadline = time.monotonic() + 60
    while not all(client.serving_app(name) for name in names):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the pool of {module} did not start")
        time.sleep(0.05)


def _done(client: DaprWorkflowClient, *ids: str) -> list[str]:
    for iid in ids:
        client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    return list(ids)


def drive_examples(client: DaprWorkflowClient) -> list[str]:
    client.schedule_new_workflow("order_pipeline", instance_id="examples-order-paid", input={
        "items": [{"sku": "a", "qty": 2, "unit_price": 30.0}, {"sku": "b", "qty": 1, "unit_price": 55.5}]})
    client.schedule_new_workflow("order_pipeline", instance_id="examples-order-rejected",
                                 input={"items": [{"sku": "free", "qty": 1, "unit_price": 0.0}]})
    client.schedule_new_workflow("count_to", instance_id="examples-count-to-5", input=5)
    return _done(client, "examples-order-paid", "examples-order-rejected", "examples-count-to-5")


def drive_order_approval(client: DaprWorkflowClient) -> list[str]:
    client.schedule_new_workflow("request_escalation", instance_id="approval-auto",
                                 input=json.dumps({"id": "o-1", "amount": 500}))
    client.schedule_new_workflow("request_escalation", instance_id="approval-human",
                                 input=json.dumps({"id": "o-2", "amount": 5000}))
    client.schedule_new_workflow("request_escalation", instance_id="approval-timeout",
                                 input=json.dumps({"id": "o-3", "amount": 7500}))
    wait_for_timers(client, "approval-human")
    client.raise_workflow_event("approval-human", "human_approval", data={"approved": True, "approver": "ana"})
    wait_for_timers(client, "approval-timeout")
    skip_timers(client, "approval-timeout", until=timedelta(days=8))  # nobody approves: the week passes
    return _done(client, "approval-auto", "approval-human", "approval-timeout")


def drive_monitor(client: DaprWorkflowClient) -> list[str]:
    # An endpoint that refuses connections: unhealthy, one alert, then short sleeps; continued as new
    # after every round; stopped by an event.
    client.schedule_new_workflow("monitor", instance_id="monitor-down", input={
        "url": "http://127.0.0.1:9/health", "timeout_s": 0.5, "unhealthy_every_s": 0.3, "healthy_every_s": 0.3})
    deadline = time.monotonic() + 30
    while not any(e["kind"] == "ExecutionStarted" and (e.get("input") or {}).get("checks", 0) >= 2
                  for e in client.get_workflow_history("monitor-down")):  # went round twice
        if time.monotonic() > deadline:
            raise TimeoutError("the monitor did not go round")
        time.sleep(0.1)
    client.raise_workflow_event("monitor-down", "stop")
    return _done(client, "monitor-down")


def drive_saga(client: DaprWorkflowClient) -> list[str]:
    client.schedule_new_workflow("book_trip", instance_id="saga-booked", input={"trip_id": "t-ok"})
    client.schedule_new_workflow("book_trip", instance_id="saga-compensated", input={"trip_id": "t-car",
                                                                                   "fail_car": True})
    return _done(client, "saga-booked", "saga-compensated")


def drive_multi_app(client: DaprWorkflowClient) -> list[str]:
    client.schedule_new_workflow("fulfil_order", instance_id="multi-app-order", app_id="orders", input={
        "lines": [{"sku": "apple", "qty": 4}, {"sku": "pear", "qty": 2}, {"sku": "plum", "qty": 5}]})
    _done(client, "multi-app-order")
    history = client.get_workflow_history("multi-app-order")
    children = [e["instance_id"] for e in history if e["kind"] == "ChildScheduled"]
    return ["multi-app-order", *_done(client, *children)]


def main() -> int:
    logs = Path(tempfile.mkdtemp(prefix="golden-histories-"))
    exported: dict[str, dict] = {}
    with EmbeddedRedis(data_dir=logs / "redis") as redis_server:
        os.environ["REDIS_URL"] = redis_server.url
        client = DaprWorkflowClient(redis_url=redis_server.url)
        for module, app_id, drive in (("workers.examples", "default", drive_examples),
                                      ("workers.order_approval", "default", drive_order_approval),
                                      ("workers.monitor", "default", drive_monitor),
                                      ("workers.saga", "default", drive_saga)):
            exported |= run_module(redis_server.url, logs, module, app_id, drive, client)
        inventory = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "worker", "workers.multi_app.inventory", "--app-id", "inventory",
             "-c", "2", "-l", "INFO"], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
            stdout=open(logs / "inventory.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            exported |= run_module(redis_server.url, logs, "workers.multi_app.orders", "orders", drive_multi_app,
                                   client)
        finally:
            os.killpg(inventory.pid, signal.SIGTERM)
            inventory.wait(30)
    for instance_id, document in exported.items():
        (HERE / f"{instance_id.replace(':', '_')}.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        print(f"{instance_id}: {document['instance']['runtime_status']}, {len(document['events'])} events")
    print(f"pool logs: {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
