"""The storage protocol: scripts get every key in KEYS, name their result codes, and recover the index
keys a caller did not know without writing anything first."""

import re
from pathlib import Path

from orchestrator.codec import pack_value
from orchestrator.core.history import ExecutionStarted
from orchestrator.core.vocabulary import member, task_token
from orchestrator.store import scripts
from orchestrator.store.records import ActivityRecord, activity_task_key
from orchestrator.store.redis_store import RedisStore
from orchestrator.store.step_io import Commit
from orchestrator.testing import fake_redis

LUA = Path(scripts.__file__).parent / "lua"
# The key a redis.call touches: its first argument after the command name.
CALL = re.compile(r"redis\.call\('(\w+)',\s*([^,)]+)")


def test_every_script_is_a_lua_file_and_none_builds_a_key_name():
    files = sorted(LUA.glob("*.lua"))
    assert {f.stem for f in files} >= {"create", "deliver", "fire_timer", "commit", "release", "ack_outbox",
                                       "claim_stale", "purge", "circuit_failure", "prelude"}
    for path in files:
        text = path.read_text()
        assert "prefix" not in text, path.name
        for command, key in CALL.findall(text):
            assert ".." not in key and "'" not in key, f"{path.name}: {command} on {key.strip()}"


def test_result_codes_are_named_per_script_and_written_into_the_script():
    assert scripts.DeliverCode.WAKE == 2 and scripts.FireTimerCode.ALREADY_FIRED == -3
    assert scripts.CommitCode.CONFLICT == 0 and scripts.PurgeCode.PUBLISHING == -3
    text = scripts.source("commit", scripts.CommitCode)
    assert "local CODE = {NEEDS_KEYS = -4, GONE = -1, DUPLICATE = -2, CONFLICT = 0, COMMITTED = 1}" in text
    assert "local TERMINAL = {" in text and "local SUSPENDED = 'SUSPENDED'" in text


def _started(store: RedisStore, instance_id: str, name: str, now: int) -> None:
    code, status = store.create_instance(instance_id, name, "app", ExecutionStarted(ts=now, name=name), None, now)
    assert (code, status) == (scripts.CreateCode.DUE, "PENDING")


def _finish(store: RedisStore, instance_id: str, now: int, **known: str) -> None:
    meta = store.get_meta(instance_id)
    assert meta is not None
    result = store.commit(instance_id, Commit(version=meta.version, now=now, status="COMPLETED",
                                              fields={"output": pack_value(1), "completed": now}, **known))
    assert result.ok


def test_a_commit_that_does_not_name_the_instance_finds_its_index_keys():
    store = RedisStore(fake_redis(), "t")
    _started(store, "a", "wf", 1)
    _finish(store, "a", 2)  # no name, no old status: the script says which, then the commit applies
    assert store.list_instance_ids(status="COMPLETED", name="wf") == ["a"]
    assert store.list_instance_ids(status="PENDING", name="wf") == []
    _started(store, "b", "wf", 3)
    _finish(store, "b", 4, name="wf", old_status="PENDING")
    assert store.list_instance_ids(status="COMPLETED") == ["b", "a"]


def test_replacing_an_instance_of_another_name_unindexes_the_old_one():
    store = RedisStore(fake_redis(), "t")
    _started(store, "x", "old", 1)
    _finish(store, "x", 2)
    code, status = store.create_instance("x", "new", "app", ExecutionStarted(ts=3, name="new"), None, 3, replace=True)
    assert (code, status) == (scripts.CreateCode.DUE, "PENDING")
    assert store.list_instance_ids(name="old") == [] and store.list_instance_ids(status="COMPLETED") == []
    assert store.list_instance_ids(name="new", status="PENDING") == ["x"]
    assert store.redis.smembers(store.keys.shard_of("x").index_names) == {b"new"}


def test_purge_without_knowing_the_instance():
    store = RedisStore(fake_redis(), "t")
    _started(store, "p", "wf", 1)
    assert store.purge("p")[0] == scripts.PurgeCode.RUNNING
    _finish(store, "p", 2)
    assert store.purge("p", name="wrong", status="FAILED") == (scripts.PurgeCode.PURGED, [])
    assert store.get_meta("p") is None and store.list_instance_ids() == []
    assert not store.redis.exists(store.keys.shard_of("p").name_status_index("wf", "COMPLETED"))


def test_an_eager_attempt_is_claimed_by_its_commit_and_its_result_is_committed_with_the_next_step():
    """The fused eager hop (Engine.run_step): the commit that keeps an attempt claims it for its taker
    and indexes it nowhere; the next step's commit consumes the result (``completed``) exactly once."""
    store = RedisStore(fake_redis(), "t")
    _started(store, "e", "wf", 1)
    shard = store.keys.shard_of("e")
    meta = store.get_meta("e")
    assert meta is not None
    rec: ActivityRecord = {"k": "a", "id": "e", "gen": 0, "seq": 1, "run": meta.run, "name": "act", "input": None,
                           "app": "app", "wf": "wf", "wapp": "app", "attempt": 1}
    key = activity_task_key(rec)
    kept = store.commit("e", Commit(version=meta.version, now=2, status="RUNNING", tasks=[key], eager=rec,
                                    taker="proc-1", wait_tokens=[task_token(key)]))
    assert kept.ok
    assert store.redis.hget(shard.claims, member("e", key)) == b"proc-1"
    assert store.redis.zscore(shard.activities, member("e", key)) is None
    assert store.task_outstanding("e", key)

    # Decided for another run (the instance was replaced meanwhile, its version came round again): refused.
    other_run = store.commit("e", Commit(version=kept.version, now=3, status="RUNNING", completed=key, run="x"))
    assert not other_run.ok and not other_run.duplicate and store.task_outstanding("e", key)
    with_result = store.commit("e", Commit(version=kept.version, now=3, status="RUNNING", completed=key,
                                           run=meta.run))
    assert with_result.ok and not store.task_outstanding("e", key)
    assert store.redis.hget(shard.claims, member("e", key)) is None

    again = store.commit("e", Commit(version=with_result.version, now=4, status="RUNNING", completed=key,
                                     run=meta.run))
    assert again.duplicate and not again.ok
    assert store.get_meta("e").version == with_result.version  # nothing written
