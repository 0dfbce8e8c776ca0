"""The command line against a private Redis and a real worker pool: a bash script drives the whole
lifecycle with ``--json`` and exit codes; Ctrl-C during a wait; ``dev`` and ``demo``; JSON logs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator import WorkflowClient, WorkflowStatus
from tests.support.redis_proc import free_port

APP = "tests.apps.ops_app"
ROOT = Path(__file__).resolve().parents[2]

LIFECYCLE = r"""
set -euo pipefail
orch() { "$PYTHON" -m orchestrator "$@"; }
field() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }
expect_rc() { local want=$1; shift; set +e; "$@" > last.out 2> last.err; local rc=$?; set -e
              [ "$rc" -eq "$want" ] || { echo "expected exit $want, got $rc from: $*"; cat last.out last.err; exit 9; }; }

# start and wait: exit 0, the state as JSON
[ "$(orch start hello --input '"shell"' --wait --quiet --json | field '["output"]')" = "hello shell" ]
echo "1 started and waited"

# an instance that waits for an event
id=$(orch start approval --input '{"n": 1}' --id sh-appr --json | field '["instance_id"]')
[ "$id" = sh-appr ]
expect_rc 1 orch start approval --id sh-appr --json          # the id is taken
[ "$(field '["error"]["type"]' < last.out)" = InstanceAlreadyExistsError ]
expect_rc 1 orch wait "$id" --timeout 0.5 --quiet --json     # still waiting: timeout is a failure
grep -q "still RUNNING" last.err
[ "$(orch suspend "$id" --json | field '["ok"]')" = True ]
for _ in $(seq 100); do s=$(orch status "$id" --json | field '["runtime_status"]'); [ "$s" = SUSPENDED ] && break; sleep 0.1; done
[ "$s" = SUSPENDED ]
orch raise-event "$id" approve --data '{"by": "sh"}' --json > /dev/null
[ "$(orch status "$id" --json | field '["runtime_status"]')" = SUSPENDED ]
orch resume "$id" > /dev/null
[ "$(orch wait "$id" --quiet --json | field '["output"]["greeting"]')" = "hello sh" ]
echo "2 suspended, raised, resumed"

[ "$(orch list --name approval --status completed --json | field '[0]["instance_id"]')" = sh-appr ]
[ "$(orch history "$id" --json | field '[-1]["kind"]')" = ExecutionCompleted ]
orch history "$id" > history.txt && grep -q "EventRaised" history.txt
orch list > list.txt && grep -Eq "^sh-appr +approval +COMPLETED" list.txt
echo "3 listed and read history"

id2=$(orch start approval --input '{}' --json | field '["instance_id"]')
expect_rc 1 orch purge "$id2" --json                         # still running
orch terminate "$id2" --output '"stopped by script"' --json > /dev/null
expect_rc 1 orch wait "$id2" --quiet --json                  # TERMINATED is not success
[ "$(field '["runtime_status"]' < last.out)" = TERMINATED ]
[ "$(field '["output"]' < last.out)" = "stopped by script" ]
expect_rc 1 orch terminate "$id2" --json                     # already finished
orch purge "$id2" --json > /dev/null
expect_rc 1 orch status "$id2" --json                        # purged: not found
[ "$(field '["error"]["type"]' < last.out)" = InstanceNotFoundError ]
echo "4 terminated and purged"

expect_rc 1 orch start doomed --input '"no way"' --wait --quiet --json
[ "$(field '["failure_details"]["error_type"]' < last.out)" = PermissionError ]
grep -q "FAILED: .*no way" last.err
expect_rc 1 orch start no_such_workflow --json
expect_rc 1 orch raise-event ghost approve
expect_rc 2 orch start hello --input '{bad json'
grep -q "not valid JSON" last.err
expect_rc 2 orch list --status sleeping
expect_rc 2 orch frobnicate
echo "5 failures and usage errors"
"""


def cli_env(url: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}


def test_a_shell_script_drives_the_whole_lifecycle(redis_server: Any, start_pool: Any, tmp_path: Path) -> None:
    start_pool(APP)
    script = tmp_path / "lifecycle.sh"
    script.write_text(LIFECYCLE)
    run = subprocess.run(["bash", str(script)], cwd=tmp_path, env=cli_env(redis_server.url),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == ["1 started and waited", "2 suspended, raised, resumed",
                                       "3 listed and read history", "4 terminated and purged",
                                       "5 failures and usage errors"]


def test_ctrl_c_stops_waiting_but_not_the_instance(redis_server: Any, client: WorkflowClient, start_pool: Any,
                                                   tmp_path: Path) -> None:
    start_pool(APP)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "start", "naps", "--input", "8", "--id", "n-1",
                             "--wait", "--json"], cwd=ROOT, env=cli_env(redis_server.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Interrupt only once the CLI is waiting and has reported the instance running: a signal that
    # lands while Python is still importing would test the interpreter, not the command.
    assert proc.stderr is not None
    seen = ""
    while "RUNNING" not in seen.rpartition("\n")[0] and proc.poll() is None:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    err = seen + err
    assert proc.returncode == 130, err
    assert json.loads(out) == {"instance_id": "n-1", "runtime_status": "RUNNING", "interrupted": True}
    assert "stopped waiting" in err and "keeps running" in err
    # Progress went to stderr: one line per change of status or of the calls' counts (stderr is not a
    # TTY here), with a bar of the calls the instance awaits.
    progress = [line for line in err.splitlines() if line.startswith("n-1: ")]
    assert progress[0].startswith(("n-1: PENDING", "n-1: RUNNING"))
    assert any(re.search(r"^n-1: RUNNING, \[[#>.]{20}\] 0/1 done, (1 running, 0|0 running, 1) queued", line)
               for line in progress), progress
    # The instance was not harmed: it runs to completion.
    done = client.wait_for_workflow_completion("n-1", timeout_in_seconds=30)
    assert done is not None and done.runtime_status == WorkflowStatus.COMPLETED and done.output == 1.6


def test_worker_json_logs_carry_instance_workflow_step_and_task(redis_server: Any, client: WorkflowClient,
                                                                start_pool: Any) -> None:
    pool = start_pool(APP, env={"ORCH_LOG_FORMAT": "json"})
    instance_id = client.schedule_new_workflow("hello", input="logs")
    client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
    client.schedule_new_workflow("doomed", input="no entry", instance_id="doomed-log")
    client.wait_for_workflow_completion("doomed-log", timeout_in_seconds=30)
    # Every line is a JSON record: Celery's banner, warnings and shutdown notices included.
    records = [json.loads(line) for line in pool.log_path.read_text().splitlines()]
    failed = next(r for r in records if r.get("instance_id") == "doomed-log" and r["message"].startswith("activity failed"))
    assert (failed["level"], failed["error_type"], failed["error"]) == ("WARNING", "PermissionError", "no entry")
    assert any(r["message"] == "worker pool starting" and r["queues"] == ["orchestrator.default"] for r in records)
    mine = [r for r in records if r.get("instance_id") == instance_id]
    activity = next(r for r in mine if r["message"] == "activity completed")
    task_key = client.store.get_meta(instance_id).task_key(1)  # <run>.<generation>.<seq>
    assert activity["workflow"] == "hello" and activity["activity"] == "greet" and activity["task_id"] == task_key
    # The Celery task it ran in: the start's step message, which ran the activity eagerly.
    assert any(f"[{activity['celery_task_id']}]" in r["message"] for r in records if "received" in r["message"])
    assert activity["level"] == "INFO"
    steps = [r for r in mine if r["message"] == "step committed"]
    assert steps and all(r["workflow"] == "hello" and isinstance(r["version"], int) for r in steps)
    assert steps[-1]["status"] == "COMPLETED"
    assert any(r["message"].endswith("ready.") for r in records)  # Celery's own lines are JSON too
    os.kill(pool.proc.pid, signal.SIGTERM)  # as a supervisor stops it: the main process, which stops its children
    pool.proc.wait(30)
    assert [line for line in pool.log_path.read_text().splitlines() if not line.startswith("{")] == []  # shutdown too


def test_demo_still_runs_the_example(redis_server: Any, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "orchestrator", "demo", "--items", "3"], cwd=ROOT,
                         env=cli_env(redis_server.url), capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "COMPLETED" in run.stdout and '"status": "paid"' in run.stdout


def test_dev_runs_redis_pool_and_api_and_ctrl_c_stops_all(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ORCH_CONFIG", "ORCH_API_TOKEN")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")  # where dev records its Redis for other terminals
    log = tmp_path / "dev.log"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "dev", "--port", str(port), "--data-dir",
                             str(tmp_path / "redis")], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops everything." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
        example_id = text.split("order_pipeline started as ")[1].split(":")[0]
        redis_port = int(text.split("redis://127.0.0.1:")[1].split("/")[0])
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                state = httpx.get(f"{base}/v1.0/workflows/dapr/{example_id}").json()
                if state["runtimeStatus"] == "COMPLETED":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert json.loads(state["properties"]["dapr.workflow.output"])["status"] == "paid"
        # Another terminal, no REDIS_URL: the CLI finds the dev stack's Redis through its record.
        record = json.loads((tmp_path / "state" / "orchestrator" / "dev-stack.json").read_text())
        assert record["redis_url"] == f"redis://127.0.0.1:{redis_port}/0" and record["pid"] == proc.pid
        other = subprocess.run([sys.executable, "-m", "orchestrator", "status", example_id, "--json"], cwd=ROOT,
                               env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
        assert other.returncode == 0 and json.loads(other.stdout)["runtime_status"] == "COMPLETED", other.stderr
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to the foreground process group
        assert proc.wait(40) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "stopped: API, worker pool, embedded Redis" in log.read_text()
    assert not (tmp_path / "state" / "orchestrator" / "dev-stack.json").exists()  # gone with the stack
    assert (tmp_path / "redis" / "port").read_text().strip() == str(redis_port)  # the next dev run's first choice
    for p in (port, redis_port):
        with socket.socket() as s, pytest.raises(OSError):
            s.connect(("127.0.0.1", p))
    assert "Redis is now ready to exit" in (tmp_path / "redis" / "redis.log").read_text()
