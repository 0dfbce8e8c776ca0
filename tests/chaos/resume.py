"""Kill-to-resume times: how long a SIGKILLed pool's work waited before it moved again.

Right before each kill the pool monkey notes the work the pool's processes (its Celery parent and
its children, by pid) had claimed in the store (worker/liveness.py). Afterwards each claim's
kill-to-resume time is the time from the kill to that very work being recorded: the result of a
claimed activity attempt (its ``seq``), or the first step started after the kill for a claimed
step. The report gives their p50 and p99.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from orchestrator.core.vocabulary import STEP_CLAIM, split_member
from orchestrator.store.connection import connect
from orchestrator.store.keys import KeySchema


def victims(url: str, pid: int) -> tuple[int, set[str]]:
    """(now in ms, the claims ``<id>|<task key>`` / ``<id>|step`` of the pool with Celery parent ``pid``)."""
    now = int(time.time() * 1000)
    r = None
    try:
        r = connect(url, socket_timeout=1)  # a Redis, or the cluster's client
        mine = set()
        for proc in r.zrange("orch:procs", 0, -1):
            rec = r.hmget(b"orch:proc:" + proc, "pid", "ppid")
            if str(pid).encode() in rec:
                mine.add(proc)
        held = {m.decode() for s in KeySchema("orch").shards()
                for m, holder in r.hgetall(s.claims).items() if holder in mine}
        return now, held
    except (redis.RedisError, redis.exceptions.RedisClusterException):  # Redis is down (the other monkey): no sample
        return now, set()
    finally:
        if r is not None:
            r.close()  # one client per kill: a cluster's holds a connection pool per node


def resume_times(client: Any, kills: list[tuple[int, set[str]]]) -> list[float]:
    """Seconds from each kill to its claimed work being recorded (work never recorded is skipped)."""
    out = []
    for killed_ms, claims in kills:
        for claim in claims:
            instance_id, key = split_member(claim)
            try:
                history = client.get_workflow_history(instance_id)
            except Exception:  # noqa: BLE001 - purged, or never created
                continue
            if key == STEP_CLAIM:
                kinds, seq = {"StepStarted"}, None
            else:
                kinds, seq = {"TaskCompleted", "TaskFailed"}, int(key.rsplit(".", 1)[1])
            after = [e["ts"] for e in history if e["kind"] in kinds and e["ts"] > killed_ms
                     and (seq is None or e.get("seq") == seq)]
            if after:
                out.append((min(after) - killed_ms) / 1000)
    return sorted(out)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]
