"""Shards: a fixed count recorded once in the store, instances spread over them, listings merged."""

import pytest

from orchestrator.core.history import ExecutionStarted
from orchestrator.store.keys import DEFAULT_SHARDS, KeySchema
from orchestrator.store.queries import StoreQueries
from orchestrator.store.redis_store import RedisStore, ShardCountError
from orchestrator.testing import fake_redis


def test_the_first_store_records_the_count_and_a_later_one_that_disagrees_is_refused():
    r = fake_redis()
    assert RedisStore(r, "t").keys.count == DEFAULT_SHARDS
    assert r.get("t:shards") == str(DEFAULT_SHARDS).encode()
    assert RedisStore(r, "t", shards=DEFAULT_SHARDS).keys.count == DEFAULT_SHARDS
    with pytest.raises(ShardCountError, match=r"configured with shards = 8 .* created with 16 \(t:shards\)"):
        _ = RedisStore(r, "t", shards=8).keys.count
    assert RedisStore(r, "other", shards=4).keys.count == 4  # another prefix is another store


def test_a_store_written_before_shards_is_refused_not_silently_hidden():
    r = fake_redis()
    r.zadd("t:idx:all", {"old": 1})
    with pytest.raises(ShardCountError, match=r"layout before shards \(t:idx:all\)"):
        _ = RedisStore(r, "t").keys.count


def test_an_instance_and_its_shard_share_one_hash_tag():
    keys = KeySchema("orch", 16)
    k = keys.instance("order-7")
    tag = f"{{s{k.shard.number}}}"
    assert all(tag in key for key in [*k.own(), k.shard.ready, k.shard.timers, k.shard.outbox, k.shard.activities,
                                      k.shard.expire, k.shard.index_all, *k.shard.listing("wf", "RUNNING")])
    spread = {keys.shard_of(f"i-{n}").number for n in range(200)}
    assert spread == set(range(16))


def test_listing_merges_every_shard_newest_first_and_a_cursor_walks_to_the_end():
    store = RedisStore(fake_redis(), "t", shards=4)
    for n in range(30):
        store.create_instance(f"i-{n:02d}", "wf", "app", ExecutionStarted(ts=n, name="wf"), None, 1000 + n // 2)
    q = StoreQueries(store)
    expected = sorted((f"i-{n:02d}" for n in range(30)), key=lambda i: (1000 + int(i[2:]) // 2, i), reverse=True)
    ids, total = q.page_ids(offset=5, limit=7)
    assert total == 30 and ids == expected[5:12]
    walked, cursor = [], ""
    while True:
        page, cursor = q.page_after(cursor, limit=4, status="PENDING")
        walked += page
        if cursor is None:
            break
    assert walked == expected
    assert q.counts().by_name["wf"]["total"] == 30 and q.status_totals()["PENDING"] == 30
    with pytest.raises(ValueError, match="invalid cursor 'nope'"):
        q.page_after("nope")


def test_a_cluster_or_sentinel_store_needs_its_own_broker_url():
    from orchestrator import Settings

    for url in ("redis+cluster://127.0.0.1:7000", "redis+sentinel://127.0.0.1:26379/mymaster"):
        with pytest.raises(ValueError, match="broker_url"):
            Settings(redis_url=url)
        assert Settings(redis_url=url, broker_url="redis://127.0.0.1:6380/0").broker == "redis://127.0.0.1:6380/0"
    with pytest.raises(ValueError, match="broker_queue_type"):
        Settings(broker_queue_type="lazy")
