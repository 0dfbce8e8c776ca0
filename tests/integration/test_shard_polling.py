"""Idle polling is O(shards), not O(pools): pools divide the shards they poll (worker/shardplan.py)."""

from __future__ import annotations

import time

import redis

from tests.support.defaults import default_pool
from tests.support.redis_proc import start_redis
from tests.support.waiting import wait_until

APP = "tests.apps.core_app"


def _shard_reads_per_second(r: redis.Redis, seconds: float = 4.0) -> float:
    """ZRANGEBYSCORE calls (timer polls, sweeps' claims, retention: every shard-walking read) per second."""
    def calls() -> int:
        return int(r.info("commandstats").get("cmdstat_zrangebyscore", {}).get("calls", 0))

    before, t0 = calls(), time.monotonic()
    time.sleep(seconds)  # a measuring window, not a wait for something to happen
    return (calls() - before) / (time.monotonic() - t0)


def test_idle_polling_stays_flat_from_one_to_four_pools(tmp_path):
    server = start_redis(tmp_path)
    r = redis.Redis.from_url(server.url)
    pools = []
    try:
        pools.append(default_pool(APP, server.url, tmp_path / "pool-0.log", concurrency=1))
        time.sleep(3)  # past its first sweep
        one = _shard_reads_per_second(r)
        for n in range(1, 4):
            pools.append(default_pool(APP, server.url, tmp_path / f"pool-{n}.log", concurrency=1))
        # Each pool logs its share once it has seen the others (a sweep after their first heartbeats).
        wait_until(lambda: all("(4 pools run duties)" in p.log_path.read_text() for p in pools), timeout=60,
                   what="the four pools to divide the shards")
        four = _shard_reads_per_second(r)
        shares = [p.log_path.read_text().rsplit("this pool polls shards ", 1)[1].split(" of ")[0] for p in pools]
        owned = sorted(int(n) for share in shares for n in share.strip("[]").split(",") if n.strip())
        assert owned == list(range(16)), shares
        print(f"shard reads per second: {one:.0f} with one pool, {four:.0f} with four")
        assert four < 1.6 * one, (one, four)  # without the division: about 4x
    finally:
        for pool in pools:
            pool.kill()
        server.stop()
