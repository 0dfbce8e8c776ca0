"""Issue 19, class 7: the smaller cases, each fixed for its whole class. Ids ending in a newline, huge
names, an idempotency key reused for another event, times of the wrong type, a URL whose password
holds / # ?, default child ids that grew past the id limit, the CLI on JSON that cannot be stored.

A real pool with the engine's default settings; every case checks the clear error, that nothing
was written, and that the pool still serves other instances.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from orchestrator import IdempotencyKeyReusedError, Settings, WorkflowStatus
from orchestrator.http import create_app
from tests.support.defaults import API_CLIENT, default_stack
from tests.support.waiting import finish, wait_until

APP = "tests.apps.hardening_app"
ROOT = Path(__file__).resolve().parents[2]
WF = "/v1.0/workflows/dapr"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with default_stack(tmp_path_factory.mktemp("small_cases"), concurrency=2) as running:
        yield running


def serves_others(stack: SimpleNamespace) -> None:
    iid = stack.client.schedule_new_workflow("hard_ok", input="next")
    assert finish(stack.client, iid).output == "next"
    assert stack.pool.proc.poll() is None, stack.pool.log_tail()


def instance_count(stack: SimpleNamespace) -> int:
    return stack.client.count_workflows()["total"]


@pytest.mark.parametrize("bad_id", ["order-1\n", "order-1\r\n", "\norder-1", "order 1", "order-1\x00", "é", "a" * 201])
def test_instance_ids_are_matched_whole_a_trailing_newline_included(stack, bad_id):
    before = instance_count(stack)
    with pytest.raises(ValueError, match="invalid instance id .*: use 1-200 characters"):
        stack.client.schedule_new_workflow("hard_ok", input=1, instance_id=bad_id)
    for call in (lambda: stack.client.raise_workflow_event(bad_id, "go"), lambda: stack.client.terminate_workflow(bad_id),
                 lambda: stack.client.purge_workflow(bad_id)):
        with pytest.raises(ValueError, match="invalid instance id"):
            call()
    with TestClient(create_app(stack.settings, stack.client), **API_CLIENT) as http:
        r = http.post(f"{WF}/hard_ok/start", params={"instanceID": bad_id}, json=1)
        assert r.status_code == 400 and r.json()["errorCode"] == "ERR_INSTANCE_ID_INVALID", r.text
    assert instance_count(stack) == before
    serves_others(stack)


def test_names_are_bounded_text_a_2_mib_event_name_is_refused_not_stored(stack):
    c = stack.client
    iid = c.schedule_new_workflow("hard_wait_child", instance_id="names-1")
    huge = "n" * (2 * 1024 * 1024)
    with pytest.raises(ValueError, match=r"event name 'n{80}\.\.\.' is 2097152 characters long, over the limit of 200"):
        c.raise_workflow_event(iid, huge, data=1)
    for name in ("go\n", "go\x07", "a|b", " ", "go\ud800"):
        with pytest.raises(ValueError, match="event name"):
            c.raise_workflow_event(iid, name)
    with pytest.raises(ValueError, match="workflow name 'w{80}\\.\\.\\.' is 300 characters long"):
        c.schedule_new_workflow("w" * 300)
    with pytest.raises(ValueError, match="app_id 'billing\\\\n' contains the control character"):
        c.schedule_new_workflow("hard_ok", app_id="billing\n")
    with pytest.raises(ValueError, match="version"):
        c.schedule_new_workflow("hard_ok", version="v1\n")
    entries, total = c.queries.inbox(iid)
    assert total == 0 or all(e["kind"] != "EventRaised" for e in entries)
    c.raise_workflow_event(iid, "GO", data="ok")  # names match case-insensitively
    assert finish(c, iid).output == "ok"
    serves_others(stack)


def test_an_idempotency_key_reused_for_another_event_name_is_refused_not_dropped(stack):
    c = stack.client
    iid = c.schedule_new_workflow("hard_wait_child", instance_id="idem-reuse")
    c.raise_workflow_event(iid, "other", data="first", idempotency_key="key-1")
    with pytest.raises(IdempotencyKeyReusedError, match="idempotency key 'key-1' was already used for an event of "
                                                        "another name; nothing was stored"):
        c.raise_workflow_event(iid, "go", data="second", idempotency_key="key-1")
    c.raise_workflow_event(iid, "OTHER", data="a retry", idempotency_key="key-1")  # the same raise again: a no-op
    with TestClient(create_app(stack.settings, stack.client), **API_CLIENT) as http:
        r = http.post(f"{WF}/{iid}/raiseEvent/go", json="via http", headers={"Idempotency-Key": "key-1"})
        assert r.status_code == 422 and r.json()["errorCode"] == "ERR_IDEMPOTENCY_KEY_REUSED", r.text
    assert c.get_workflow_state(iid).runtime_status == WorkflowStatus.RUNNING  # "go" never arrived
    c.raise_workflow_event(iid, "go", data="with its own key", idempotency_key="key-2")
    assert finish(c, iid).output == "with its own key"
    raised = [(e["name"], e["data"]) for e in c.get_workflow_history(iid) if e["kind"] == "EventRaised"]
    assert raised == [("other", "first"), ("go", "with its own key")]
    serves_others(stack)


def test_times_of_the_wrong_type_are_named(stack):
    c = stack.client
    before = instance_count(stack)
    for bad in ("tomorrow", timedelta(minutes=5), 1_700_000_000, datetime.now(UTC).date()):
        with pytest.raises(TypeError, match=f"start_at must be a datetime, got {type(bad).__name__}"):
            c.schedule_new_workflow("hard_ok", input=1, start_at=bad)
    with pytest.raises(TypeError, match="created_from must be a datetime, got str"):
        c.list_workflows(created_from="yesterday")
    with pytest.raises(TypeError, match="created_to must be a datetime"):
        c.count_workflows(created_to=3)
    for timeout in ("5", -1, float("nan"), True):
        with pytest.raises(ValueError, match="timeout_in_seconds must be a non-negative number"):
            c.wait_for_workflow_completion("anything", timeout_in_seconds=timeout)
    assert instance_count(stack) == before
    serves_others(stack)


@pytest.mark.parametrize("secret", ["se/cret", "se#cret", "se?cret", "a/b#c?d"])
def test_a_url_whose_password_holds_a_url_delimiter_is_refused_without_showing_it(stack, secret, tmp_path):
    url = f"redis://app:{secret}@127.0.0.1:6390/0"
    with pytest.raises(ValueError) as caught:
        Settings(redis_url=url)
    message = str(caught.value)
    assert secret not in message and "cret" not in message and "redis://app:***@127.0.0.1:6390/0" in message
    assert "percent-encode them" in message
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "orchestrator", "status", "x"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert secret not in run.stdout + run.stderr and "***" in run.stderr, run.stderr
    serves_others(stack)


def test_default_child_ids_stay_within_the_id_limit_however_deep_the_recursion(stack):
    c = stack.client
    levels = 120  # ids grew by ':1' per level and stopped at about 85 before
    iid = c.schedule_new_workflow("hard_recurse", input=levels, instance_id="r" * 60)
    assert finish(c, iid, timeout=240).output == levels
    ids, current = [], iid
    while True:
        kids = c.list_workflows(parent_instance_id=current, limit=5)
        if not kids:
            break
        current = kids[0].instance_id
        ids.append(current)
    assert len(ids) == levels and len(set(ids)) == levels
    assert max(len(i) for i in ids) <= 200 and any("@" in i for i in ids)  # shortened ones end in a digest
    serves_others(stack)


@pytest.mark.parametrize("value, needle", [
    ("NaN", "holds NaN, which is not JSON"),
    ("1e400", "is inf, which JSON cannot represent"),
    ('{"n": 123456789012345678901234567890}', "beyond the 64-bit range"),
    ("[" * 5000 + "]" * 5000, "more than 100 levels deep"),
    ("9" * 5000, "Exceeds the limit (4300 digits)"),
    ('"\\ud800"', "holds the lone surrogate"),
    ("{bad json", "not valid JSON"),
])
def test_the_cli_refuses_json_that_cannot_be_stored_with_a_usage_error_not_a_traceback(stack, value, needle):
    before = instance_count(stack)
    env = {**os.environ, "REDIS_URL": stack.url, "PYTHONPATH": str(ROOT)}
    for args in (["start", "hard_ok", "--input", value], ["raise-event", "x", "go", "--data", value],
                 ["terminate", "x", "--output", value]):
        run = subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 2, (args[0], run.returncode, run.stderr[-2000:])
        assert "Traceback" not in run.stderr and needle in run.stderr, run.stderr[-2000:]
    assert instance_count(stack) == before
    serves_others(stack)


def test_every_json_argument_of_the_cli_reaches_the_instance_exactly(stack):
    env = {**os.environ, "REDIS_URL": stack.url, "PYTHONPATH": str(ROOT)}
    value = {"big": 2**63 - 1, "neg": -(2**63), "text": "é ✓", "deep": json.loads("[" * 99 + "]" * 99)}
    run = subprocess.run([sys.executable, "-m", "orchestrator", "start", "hard_ok", "--input", json.dumps(value),
                          "--id", "cli-exact", "--wait", "--quiet", "--json"], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert stack.client.get_workflow_state("cli-exact").output == value
    wait_until(lambda: stack.pool.proc.poll() is None)
