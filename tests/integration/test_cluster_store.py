"""The store on a real 3-master Redis Cluster and behind Sentinel; store URLs and their errors.

These start their own servers whatever ORCH_TEST_STORE says (the cluster run of the other suites
is the CI's extra job)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
import redis
import redis.cluster

from orchestrator import Settings, WorkflowClient, WorkflowStatus
from orchestrator.aio import DaprWorkflowClient as AsyncWorkflowClient
from orchestrator.core.history import ExecutionStarted
from orchestrator.embedded import EmbeddedRedis, find_redis_server, free_port
from orchestrator.errors import RedisUnavailableError
from orchestrator.store.connection import connect
from orchestrator.store.keys import KeySchema
from orchestrator.store.redis_store import RedisStore
from orchestrator.store.step_io import Commit
from tests.conftest import Pool
from tests.support.cluster import RedisClusterProc, spare_port
from tests.support.sentinel import Sentinel
from tests.support.waiting import wait_until

# The few global keys (none on a step's path) and each worker process's registry record (orch:proc:<id>).
GLOBAL_KEYS = {"orch:shards", "orch:workflows", "orch:pools", "orch:metrics", "orch:apilog", "orch:procs"}


@pytest.fixture
def cluster(tmp_path: Path):
    with RedisClusterProc(tmp_path / "cluster") as proc:
        broker = EmbeddedRedis(tmp_path / "broker", port=spare_port()).start()
        try:
            proc.broker = broker  # type: ignore[attr-defined]
            yield proc
        finally:
            broker.stop()


def _all_keys(proc: RedisClusterProc) -> list[str]:
    keys: list[str] = []
    for node in proc.masters:
        client = redis.Redis(port=node.port)
        keys += [k.decode() for k in client.scan_iter(count=1000)]
        client.close()
    return keys


def test_every_key_of_a_run_sits_in_its_shards_slot(cluster, tmp_path):
    env = {"REDIS_URL": cluster.url, "ORCH_BROKER_URL": cluster.broker.url}
    pool = Pool("tests.apps.lifecycle_app", cluster.url, "default", 2, tmp_path / "pool.log", env).start()
    try:
        pool.wait_ready()
        client = WorkflowClient(settings=Settings(redis_url=cluster.url, broker_url=cluster.broker.url))
        ids = [client.schedule_new_workflow("three_children", input=[1, 2, 3]) for _ in range(4)]
        ticker = client.schedule_new_workflow("ticker", input={"n": 2, "counter": "c"})
        for instance_id in ids:
            state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
            assert state.runtime_status == WorkflowStatus.COMPLETED and state.output["sum"] == 12
        wait_until(lambda: client.get_workflow_state(ticker).runtime_status == WorkflowStatus.RUNNING
                   and client.queries.waiting_for(ticker)["events"] == ["finish"], what="the ticker to wait")
    finally:
        pool.kill()
    keys = KeySchema("orch", 16)
    children = [c for i in ids for c in client.store.child_ids(i)]
    assert len(children) == 12
    found = [k for k in _all_keys(cluster) if k.startswith("orch:")]
    owners = [*ids, *children, ticker]
    for instance_id in owners:
        k = keys.instance(instance_id)
        own = [key for key in k.own() if key in found]
        assert k.meta in own and k.hist in own
        slots = {redis.cluster.key_slot(key.encode()) for key in own + [k.shard.ready, k.shard.index_all]}
        assert len(slots) == 1, (instance_id, own)
    # Nothing but the shards' keys and the few global ones, off the step's path.
    stray = [k for k in found if "{s" not in k and k not in GLOBAL_KEYS and not k.startswith("orch:proc:")]
    assert stray == []
    per_node = [sum(1 for k in _keys_of(node) if k.startswith("orch:{s")) for node in cluster.masters]
    assert all(n > 0 for n in per_node), per_node  # the shards spread over the three masters


def _keys_of(node: EmbeddedRedis) -> list[str]:
    client = redis.Redis(port=node.port)
    try:
        return [k.decode() for k in client.scan_iter(count=1000)]
    finally:
        client.close()


def test_a_create_or_commit_that_fails_leaves_no_partial_write(cluster):
    store = RedisStore.from_url(cluster.url)
    before = sorted(_all_keys(cluster))
    # A step message pushed onto a queue in another slot (the broker cannot be a cluster): refused
    # whole, before the script writes anything.
    with pytest.raises((redis.exceptions.RedisError, redis.exceptions.RedisClusterException), match="(?i)slot"):
        store.create_instance("half", "wf", "app", ExecutionStarted(ts=1, name="wf"), None, 1,
                              step_message=("orchestrator.default", b"m"))
    assert sorted(k for k in _all_keys(cluster) if k != "orch:shards") == [k for k in before if k != "orch:shards"]
    assert store.get_meta("half") is None and store.list_instance_ids() == []
    assert store.create_instance("half", "wf", "app", ExecutionStarted(ts=1, name="wf"), None, 1)[0] == 2
    snapshot = store.load("half")
    assert snapshot is not None
    written = sorted(_all_keys(cluster))
    with pytest.raises((redis.exceptions.RedisError, redis.exceptions.RedisClusterException), match="(?i)slot"):
        store.commit("half", Commit(version=0, now=2, status="COMPLETED", consumed=[e.entry_id for e in snapshot.inbox],
                                    pushes={"orchestrator.default": [b"m"]}, name="wf", old_status="PENDING"))
    assert sorted(_all_keys(cluster)) == written
    meta = store.get_meta("half")
    assert meta is not None and meta.status == "PENDING" and meta.version == 0
    assert len(store.load("half").inbox) == 1  # type: ignore[union-attr]


def test_store_urls_name_themselves_in_their_errors_with_the_password_hidden():
    port = free_port()
    with pytest.raises(RedisUnavailableError) as err:
        connect(f"redis+cluster://:s3cret@127.0.0.1:{port}")
    assert f"redis+cluster://:***@127.0.0.1:{port}" in str(err.value) and "s3cret" not in str(err.value)
    with pytest.raises(ValueError, match=r"redis\+sentinel://:\*\*\*@h:1' .*names its service"):
        connect("redis+sentinel://:s3cret@h:1")
    with pytest.raises(ValueError, match="database 0 only"):
        connect("redis+cluster://127.0.0.1:7000/3")
    with pytest.raises(ValueError, match="cannot be the Celery broker"):
        Settings(redis_url="redis+cluster://127.0.0.1:7000")
    sentinel = connect(f"redis+sentinel://:s3cret@127.0.0.1:{port}/mymaster/0")
    with pytest.raises(RedisUnavailableError, match=rf"redis\+sentinel://:\*\*\*@127.0.0.1:{port}/mymaster/0"):
        sentinel.ping()


def test_unix_socket_store(tmp_path):
    sock = tmp_path / "r.sock"
    proc = subprocess.Popen([find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--save", "",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(sock.exists, what="the socket")
        store = RedisStore.from_url(f"unix://{sock}?db=0")
        wait_until(lambda: _pings(store), what="redis on the socket")
        assert store.create_instance("u", "wf", "app", ExecutionStarted(ts=1, name="wf"), None, 1)[0] == 2
        assert store.list_instance_ids() == ["u"]
    finally:
        proc.kill()
        proc.wait()


def _pings(store: RedisStore) -> bool:
    try:
        return store.ping()
    except redis.exceptions.ConnectionError:
        return False


def test_a_sentinel_failover_of_the_store_loses_nothing(tmp_path):
    sentinel = Sentinel(tmp_path / "sentinel")
    broker = EmbeddedRedis(tmp_path / "broker").start()
    pool = None
    try:
        env = {"REDIS_URL": sentinel.url, "ORCH_BROKER_URL": broker.url}
        pool = Pool("tests.apps.lifecycle_app", sentinel.url, "default", 2, tmp_path / "pool.log", env).start()
        pool.wait_ready()
        client = WorkflowClient(settings=Settings(redis_url=sentinel.url, broker_url=broker.url))
        iid = client.schedule_new_workflow("ticker", input={"n": 3, "counter": "failover"})
        wait_until(lambda: client.queries.waiting_for(iid)["events"] == ["finish"], timeout=60, what="the wait")
        old = sentinel.master_port()
        redis.Redis(port=old).execute_command("WAIT", 1, 5000)  # the replica holds every write so far
        sentinel.master.kill()
        wait_until(lambda: sentinel.master_port() != old, timeout=60, what="the replica to be promoted")
        wait_until(lambda: _raised(client, iid), timeout=60, what="the event to be accepted by the new master")
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
        assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
        assert state.output == {"ticks": 3, "finish": "now"}
        history = client.get_workflow_history(iid)
        assert sum(1 for e in history if e["kind"] == "TaskCompleted") == 3
    finally:
        if pool is not None:
            pool.kill()
        broker.stop()
        sentinel.stop()


def _run_through_the_async_client(url: str, broker_url: str, tmp_path: Path) -> None:
    """A pool on ``url``; the asyncio client starts a workflow there and waits for it on redis-py's
    asyncio client for that kind of store."""
    env = {"REDIS_URL": url, "ORCH_BROKER_URL": broker_url}
    pool = Pool("tests.apps.lifecycle_app", url, "default", 2, tmp_path / "pool.log", env).start()

    async def run() -> tuple[object, object]:
        async with AsyncWorkflowClient(settings=Settings(redis_url=url, broker_url=broker_url)) as client:
            iid = await client.schedule_new_workflow("doubler", input=21)
            state = await client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
            return state, await client.get_workflow_state("never-started")

    try:
        pool.wait_ready()
        state, missing = asyncio.run(run())
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, pool.log_tail()
        assert state.output == 42 and missing is None
    finally:
        pool.kill()


def test_the_async_client_runs_on_a_cluster_store(cluster, tmp_path):
    _run_through_the_async_client(cluster.url, cluster.broker.url, tmp_path)


def test_the_async_client_runs_on_a_sentinel_store(tmp_path):
    sentinel = Sentinel(tmp_path / "sentinel")
    broker = EmbeddedRedis(tmp_path / "broker").start()
    try:
        _run_through_the_async_client(sentinel.url, broker.url, tmp_path)
    finally:
        broker.stop()
        sentinel.stop()


def test_a_cluster_that_cannot_be_reached_raises_the_named_store_error_from_pipelines_too(cluster):
    """redis-py's cluster client raises a plain RedisClusterException when no node answers; the store
    names it as unavailable (a StoreError the engine retries) for commands and pipelines alike."""
    store = RedisStore(connect(cluster.url))
    store.redis.set("{s0}probe", 1)
    for node in cluster.nodes:
        node.kill()
    with pytest.raises(RedisUnavailableError, match=r"Redis at redis\+cluster://.* is unreachable"):
        store.redis.get("{s0}probe")
    pipe = store.redis.pipeline(transaction=False)
    pipe.hincrbyfloat("{s0}probe-hash", "f", 1)
    with pytest.raises(RedisUnavailableError, match=r"Redis at redis\+cluster://.* is unreachable"):
        pipe.execute()


def _raised(client: WorkflowClient, iid: str) -> bool:
    try:
        client.raise_workflow_event(iid, "finish", data="now")
        return True
    except redis.exceptions.RedisError:
        time.sleep(0.2)
        return False


def _master_of(proc: RedisClusterProc, key: str) -> EmbeddedRedis | None:
    """The master serving ``key``'s slot, as the first node that answers sees it."""
    slot = redis.cluster.key_slot(key.encode())
    for node in proc.nodes:
        if node.pid is None:
            continue
        client = redis.Redis(port=node.port, socket_timeout=1)
        try:
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return next(n for n in proc.nodes if n.port == int(master[1]))
        except redis.exceptions.RedisError:
            continue
        finally:
            client.close()
    return None


def _cluster_ok(node: EmbeddedRedis) -> bool:
    try:
        client = redis.Redis(port=node.port, socket_timeout=1)
        info = client.execute_command("CLUSTER", "INFO")
        client.close()
        return b"cluster_state:ok" in info
    except redis.exceptions.RedisError:
        return False


def test_a_cluster_primary_failover_mid_run_loses_nothing(tmp_path):
    with RedisClusterProc(tmp_path / "cluster", masters=3, replicas=1) as proc:
        broker = EmbeddedRedis(tmp_path / "broker", port=spare_port()).start()
        env = {"REDIS_URL": proc.url, "ORCH_BROKER_URL": broker.url}
        pool = Pool("tests.apps.lifecycle_app", proc.url, "default", 2, tmp_path / "pool.log", env).start()
        try:
            pool.wait_ready()
            client = WorkflowClient(settings=Settings(redis_url=proc.url, broker_url=broker.url))
            iid = client.schedule_new_workflow("ticker", input={"n": 3, "counter": "cluster-failover"})
            wait_until(lambda: client.queries.waiting_for(iid)["events"] == ["finish"], timeout=60, what="the wait")
            meta_key = client.store.keys.instance(iid).meta
            victim = _master_of(proc, meta_key)
            assert victim is not None
            redis.Redis(port=victim.port).execute_command("WAIT", 1, 5000)  # its replica holds every write
            victim.kill()
            survivor = next(n for n in proc.masters if n is not victim)
            wait_until(lambda: _master_of(proc, meta_key) not in (victim, None) and _cluster_ok(survivor), timeout=60,
                       what="the replica to be promoted")
            wait_until(lambda: _raised(client, iid), timeout=60, what="the event to reach the promoted replica")
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
            assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
            assert state.output == {"ticks": 3, "finish": "now"}
            assert sum(1 for e in client.get_workflow_history(iid) if e["kind"] == "TaskCompleted") == 3
        finally:
            pool.kill()
            broker.stop()


def test_resharding_a_live_cluster_mid_run_loses_nothing(cluster, tmp_path):
    """The busy shards of one master move to another while their runs take steps, run activities and
    fire timers. Every script on a moving slot meets ASK, or TRYAGAIN until the slot's last key has
    moved: each slot takes about a second here, longer than redis-py retries a TRYAGAIN."""
    env = {"REDIS_URL": cluster.url, "ORCH_BROKER_URL": cluster.broker.url}
    pool = Pool("tests.apps.lifecycle_app", cluster.url, "default", 2, tmp_path / "pool.log", env).start()
    try:
        pool.wait_ready()
        client = WorkflowClient(settings=Settings(redis_url=cluster.url, broker_url=cluster.broker.url))
        rounds = 4
        ids = {f"reshard-{n}": n for n in range(40)}
        for instance_id, n in ids.items():
            client.schedule_new_workflow("paced_doubler", input={"n": n, "rounds": rounds, "pause_ms": 200},
                                         instance_id=instance_id)
        source, target = cluster.masters[0], cluster.masters[1]
        shards = {client.store.keys.shard_of(i).base for i in ids}
        slots = sorted(s for s in {redis.cluster.key_slot(b.encode()) for b in shards} if cluster.owner(s) is source)
        assert slots, "no shard of the runs sits on the first master"
        wait_until(lambda: any(_completed_tasks(client, i) for i in ids), timeout=30, what="the first activity")
        moved = [cluster.move_slot(slot, target, batch=5, pause=0.25) for slot in slots]
        assert all(n > 0 for n in moved), moved  # each slot held the keys of runs under way
        for instance_id, n in ids.items():
            state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
            assert state.runtime_status == WorkflowStatus.COMPLETED, (instance_id, state.failure_details)
            assert state.output == n * 2 ** rounds
            kinds = [e["kind"] for e in client.get_workflow_history(instance_id)]
            counts = {k: kinds.count(k) for k in ("TaskScheduled", "TaskCompleted", "TimerCreated", "TimerFired")}
            assert counts == dict.fromkeys(counts, rounds), (instance_id, kinds)
    finally:
        pool.kill()
    errors = _error_replies(cluster)
    assert errors.get("ASK", 0) > 0 and errors.get("TRYAGAIN", 0) > 0, errors  # the runs met the migration
    # No step or activity failed on the way (none had to wait for a sweeper), and each activity ran once.
    failed = [line for line in pool.log_path.read_text(errors="replace").splitlines() if "raised unexpected" in line]
    assert failed == []
    runs = _counters(cluster, "test:runs:")
    assert len(runs) == len(ids) * rounds and set(runs.values()) == {1}, runs
    for slot in slots:
        assert all(_owner_seen_by(node, slot) == target.port for node in cluster.masters)
    assert not [k for k in _keys_of(source) if redis.cluster.key_slot(k.encode()) in slots]


def _completed_tasks(client: WorkflowClient, instance_id: str) -> int:
    return sum(1 for e in client.get_workflow_history(instance_id) if e["kind"] == "TaskCompleted")


def _owner_seen_by(node: EmbeddedRedis, slot: int) -> int | None:
    """The port of the master that ``node``'s view of the cluster says serves ``slot``."""
    client = redis.Redis(port=node.port)
    try:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        return None
    finally:
        client.close()


def _error_replies(proc: RedisClusterProc) -> dict[str, int]:
    """How many error replies of each kind (ASK, MOVED, TRYAGAIN...) the masters sent, summed."""
    totals: dict[str, int] = {}
    for node in proc.masters:
        client = redis.Redis(port=node.port)
        for name, stat in client.info("errorstats").items():
            kind = name.removeprefix("errorstat_")
            totals[kind] = totals.get(kind, 0) + int(stat["count"])
        client.close()
    return totals


def _counters(proc: RedisClusterProc, prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for node in proc.masters:
        client = redis.Redis(port=node.port)
        found.update({k.decode(): int(client.get(k)) for k in client.scan_iter(match=f"{prefix}*", count=1000)})
        client.close()
    return found
