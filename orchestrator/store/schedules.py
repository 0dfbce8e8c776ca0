"""Schedules in the store: their spec and state, the due index, and revision-checked writes.

A schedule is one hash (keys.py ``schedule``): the spec as JSON, a revision ``rev`` that every write
raises, and the state fields of ``core.schedule.ScheduleState``. A tick reads it (with ``rev``),
decides, and writes with SCHEDULE_ADVANCE, which applies only at the same revision: two pools
ticking one schedule at once cannot both move it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from ..codec import pack_script_args
from ..core.schedule import ScheduleSpec, ScheduleState
from .keys import KeySchema
from .scripts import ScheduleCode, ScheduleScripts


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class StoredSchedule:
    spec: ScheduleSpec
    state: ScheduleState
    rev: str
    created_ms: int


class ScheduleStore:
    def __init__(self, client: redis.Redis, keys: KeySchema) -> None:
        self.redis = client
        self.keys = keys
        self.scripts = ScheduleScripts(client)

    @classmethod
    def of(cls, store: Any) -> ScheduleStore:
        """The schedule store beside a ``RedisStore`` (same client and key prefix), made once."""
        found = getattr(store, "_schedule_store", None)
        if found is None:
            found = cls(store.redis, store.keys)
            store._schedule_store = found
        return found

    def create(self, spec: ScheduleSpec, state: ScheduleState, now: int) -> bool:
        """False when the id is taken."""
        fields = {"spec": spec.to_json(), **state.to_fields()}
        code = self.scripts.put(self.keys.schedule(spec.schedule_id), self.keys.schedules_due, self.keys.schedules_all,
                                spec.schedule_id, create=True, now=now, due=state.due_ms,
                                blob=pack_script_args(fields))
        return code == ScheduleCode.DONE

    def replace(self, spec: ScheduleSpec, state: ScheduleState, now: int) -> bool:
        """Replace the spec and state of an existing schedule; False when it does not exist."""
        fields = {"spec": spec.to_json(), **state.to_fields()}
        code = self.scripts.put(self.keys.schedule(spec.schedule_id), self.keys.schedules_due, self.keys.schedules_all,
                                spec.schedule_id, create=False, now=now, due=state.due_ms,
                                blob=pack_script_args(fields))
        return code == ScheduleCode.DONE

    def get(self, schedule_id: str) -> StoredSchedule | None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(self.keys.schedule(schedule_id))
        pipe.zscore(self.keys.schedules_due, schedule_id)
        raw, due = pipe.execute()
        if not raw or b"spec" not in raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return StoredSchedule(ScheduleSpec.from_json(fields["spec"]),
                              ScheduleState.from_fields(fields, int(due) if due is not None else None),
                              fields.get("rev", "0"), int(fields.get("created", "0") or 0))

    def advance(self, schedule_id: str, rev: str, state: ScheduleState) -> ScheduleCode:
        return self.scripts.advance(self.keys.schedule(schedule_id), self.keys.schedules_due, schedule_id, rev=rev,
                                    due=state.due_ms, blob=pack_script_args(state.to_fields()))

    def delete(self, schedule_id: str) -> bool:
        code = self.scripts.delete(self.keys.schedule(schedule_id), self.keys.schedules_due, self.keys.schedules_all,
                                   schedule_id)
        return code == ScheduleCode.DONE

    def ids(self, offset: int = 0, limit: int = 1000) -> list[str]:
        """Schedule ids, oldest first."""
        return [_text(v) for v in self.redis.zrange(self.keys.schedules_all, offset, offset + limit - 1)]

    def count(self) -> int:
        return int(self.redis.zcard(self.keys.schedules_all))

    def due(self, now: int, limit: int = 200) -> list[str]:
        """Schedules a pool must tick now."""
        return [_text(v) for v in self.redis.zrangebyscore(self.keys.schedules_due, "-inf", now, start=0, num=limit)]

    def next_due(self) -> int | None:
        """When the soonest schedule is due (ms), or None (the test toolkit's time skipping)."""
        head = self.redis.zrange(self.keys.schedules_due, 0, 0, withscores=True)
        return int(head[0][1]) if head else None

    def hurry(self, schedule_id: str, now: int) -> bool:
        """Time skipping: the schedule's next nominal time fires at the next tick (due now)."""
        for _ in range(10):
            stored = self.get(schedule_id)
            if stored is None or stored.state.next_ms is None or stored.state.paused:
                return False
            state = stored.state
            hurried = ScheduleState(**{**state.__dict__, "hurry": True, "due_ms": now})
            if self.advance(schedule_id, stored.rev, hurried) == ScheduleCode.DONE:
                return True
        return False


__all__ = ["ScheduleStore", "StoredSchedule"]
