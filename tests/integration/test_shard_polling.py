"""Idle polling is O(shards), not O(pools): pools divide the shards they poll (worker/shardplan.py)."""

from __future__ import annotations

import time

import redis

from orchestrator.store.redis_store import RedisStore
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
        store = RedisStore(r)
        wait_until(lambda: len(store.liveness.duty_processes(int(time.time() * 1000) - 10_000)) == 4, timeout=60,
                   what="the four pools to register as running duties")
        rates: list[float] = []

        def flat() -> bool:  # each pool takes its share at its next sweep (sweep_interval, 2 s)
            rates.append(_shard_reads_per_second(r, 3.0))
            return rates[-1] < 1.6 * one  # without the division: about 4x

        wait_until(flat, timeout=60, what=f"idle polling with four pools to come down near one pool's ({one:.0f}/s)")
        print(f"shard reads per second: {one:.0f} with one pool, {rates[-1]:.0f} with four")
        assert any("this pool polls shards" in p.log_path.read_text() for p in pools[1:])
    finally:
        for pool in pools:
            pool.kill()
        server.stop()
