"""Rendezvous division of the shards among the pools that run duties."""

from orchestrator.worker.shardplan import my_shards


def test_every_shard_has_exactly_one_owner_and_a_new_pool_moves_few():
    pools = [f"host:{n}:abc" for n in range(4)]
    shares = {p: my_shards(p, pools, 64) for p in pools}
    assert sorted(n for share in shares.values() for n in share) == list(range(64))
    assert all(shares.values())  # everyone gets some
    joined = [*pools, "host:9:new"]
    after = {p: my_shards(p, joined, 64) for p in joined}
    moved = sum(1 for p in pools for n in shares[p] if n not in after[p])
    assert moved == len(after["host:9:new"]) and moved < 64 // 2  # only the newcomer's share moved
    assert my_shards("alone", [], 16) == list(range(16))  # a process not yet listed counts itself
