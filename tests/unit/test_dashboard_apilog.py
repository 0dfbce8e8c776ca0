"""The API log: a capped Redis stream of workflow API calls, written by a decorator on the client."""

from __future__ import annotations

import fakeredis
import pytest

from orchestrator import apilog
from orchestrator.store.redis_store import RedisStore


class Api:
    """Stands in for WorkflowClient: the decorator needs ``store`` and ``caller`` only."""

    def __init__(self, r) -> None:
        self.store = RedisStore(r, "orch")
        self.caller = "client"

    @apilog.logged("start")
    def schedule_new_workflow(self, workflow, *, input=None, instance_id=None):
        return instance_id or "generated-id"

    @apilog.logged("raise_event")
    def raise_workflow_event(self, instance_id, event_name, *, data=None):
        if instance_id == "missing":
            raise LookupError(f"no workflow instance with id {instance_id!r}")


@pytest.fixture
def r():
    return fakeredis.FakeRedis()


def test_calls_are_logged_with_caller_op_instance_detail_and_result(r):
    api = Api(r)
    assert api.schedule_new_workflow("checkout", input=1) == "generated-id"
    api.raise_workflow_event("abc", "approval", data={"ok": True})
    entries = apilog.read(RedisStore(r, "orch"))
    assert [(e["op"], e["instance"], e["detail"], e["result"], e["caller"]) for e in entries] == [
        ("raise_event", "abc", "approval", "ok", "client"),
        ("start", "generated-id", "checkout", "ok", "client"),
    ]
    assert all(int(e["ts"]) > 1_600_000_000_000 for e in entries)


def test_a_failed_call_is_logged_with_its_error_and_still_raises(r):
    api = Api(r)
    with pytest.raises(LookupError):
        api.raise_workflow_event("missing", "go")
    (entry,) = apilog.read(RedisStore(r, "orch"))
    assert entry["result"] == "LookupError: no workflow instance with id 'missing'"
    assert entry["instance"] == "missing"


def test_caller_comes_from_the_client_attribute_or_the_as_caller_block(r):
    api = Api(r)
    api.caller = "cli"
    api.schedule_new_workflow("a", instance_id="one")
    with apilog.as_caller("dashboard"):
        api.schedule_new_workflow("a", instance_id="two")
    api.schedule_new_workflow("a", instance_id="three")
    callers = {e["instance"]: e["caller"] for e in apilog.read(RedisStore(r, "orch"))}
    assert callers == {"one": "cli", "two": "dashboard", "three": "cli"}


def test_stream_is_capped_and_pages_newest_first(r):
    for i in range(apilog.MAXLEN + 500):
        apilog.write(RedisStore(r, "orch"), caller="client", op="start", instance=f"i{i}", result="ok")
    # MAXLEN ~ trims whole macro nodes, so the length stays near the cap, never far above it.
    assert r.xlen(apilog.stream_key("orch")) <= apilog.MAXLEN + 200
    page = apilog.read(RedisStore(r, "orch"), limit=3)
    assert [e["instance"] for e in page] == [f"i{apilog.MAXLEN + 499}", f"i{apilog.MAXLEN + 498}", f"i{apilog.MAXLEN + 497}"]
    older = apilog.read(RedisStore(r, "orch"), before=page[-1]["id"], limit=2)
    assert [e["instance"] for e in older] == [f"i{apilog.MAXLEN + 496}", f"i{apilog.MAXLEN + 495}"]
    newer = apilog.read(RedisStore(r, "orch"), after=page[1]["id"])
    assert [e["instance"] for e in newer] == [f"i{apilog.MAXLEN + 499}"]


def test_listeners_see_entries_and_a_failing_listener_does_not_break_the_call(r):
    seen = []

    def broken(entry):
        raise RuntimeError("observer bug")

    apilog.add_listener(seen.append)
    apilog.add_listener(broken)
    try:
        Api(r).schedule_new_workflow("wf", instance_id="x")
    finally:
        apilog.remove_listener(seen.append)
        apilog.remove_listener(broken)
    assert [e["instance"] for e in seen] == ["x"]


def test_read_refuses_a_silly_limit(r):
    with pytest.raises(ValueError, match="limit must be between 1 and 1000"):
        apilog.read(RedisStore(r, "orch"), limit=0)
