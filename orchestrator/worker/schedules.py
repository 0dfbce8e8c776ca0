"""Firing schedules: the pool duty that ticks due schedules, and starting a scheduled run.

Every pool's background duties call ``ScheduleFirer.fire_due`` with the timers. A tick of one
schedule (``tick``) is:

1. read the schedule and its revision, and the status of the run it started last;
2. plan (``core.schedule.plan_tick``): the runs to start, the previous run to terminate, the state;
3. write that state iff the revision is unchanged (SCHEDULE_ADVANCE): one pool wins, the others
   see a conflict and stop; the decided runs are recorded as ``starting`` in that same write;
4. create every run still ``starting``, each under the instance id of its nominal time (CREATE
   creates only if the id is absent), terminate the previous run if asked, and clear ``starting``.

A pool that dies between 3 and 4 leaves ``starting`` set and the schedule due: the next tick of any
pool creates those runs. A run created twice is impossible (the id is taken), so each nominal time
starts exactly once, whatever the pools and Redis restarts (with AOF) in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..core.history import ExecutionStarted, ExecutionTerminated
from ..core.schedule import ScheduleSpec, ScheduleState, Tick, plan_tick
from ..core.vocabulary import CONTROL_TOKEN, PURGED, TERMINAL
from ..store.redis_store import RedisStore
from ..store.schedules import ScheduleStore, StoredSchedule
from ..store.scripts import CreateCode, DeliverCode, ScheduleCode
from .publisher import Publisher

log = logging.getLogger("orchestrator.schedules")
RETRY_UNROUTABLE_MS = 5000  # a schedule whose workflow no pool serves yet is looked at again this often


class NotRoutable(Exception):
    """No pool has registered the schedule's workflow (and it names no app_id)."""


def start_run(store: RedisStore, publisher: Publisher, spec: ScheduleSpec, instance_id: str, now: int) -> bool:
    """Create the run ``instance_id`` of ``spec`` if absent and have its first step run; False when
    the id existed already (this nominal time has started)."""
    app = spec.app_id or store.workflow_app(spec.workflow)
    if app is None:
        raise NotRoutable(f"schedule {spec.schedule_id!r}: no worker pool has registered workflow "
                          f"{spec.workflow!r} (start one, or give the schedule an app_id)")
    started = ExecutionStarted(ts=now, name=spec.workflow, input=spec.input)
    step = publisher.step_message(instance_id, app)
    code, _status = store.create_instance(instance_id, spec.workflow, app, started, spec.input, now, step_message=step)
    if code == CreateCode.DUE and step is None:
        publisher.send_step(instance_id, app)
    return code in (CreateCode.DUE, CreateCode.CREATED)


def terminate_run(store: RedisStore, publisher: Publisher, instance_id: str, schedule_id: str, now: int) -> None:
    """Ask the previous run to end (overlap policies cancel_other / terminate_other)."""
    output = {"terminated_by_schedule": schedule_id}
    code = store.deliver(instance_id, ExecutionTerminated(ts=now, output=output, recursive=True),
                         token=CONTROL_TOKEN, now=now, control=True)
    if code == DeliverCode.WAKE:
        meta = store.get_meta(instance_id)
        if meta is not None:
            publisher.send_step(instance_id, meta.app)


class ScheduleFirer:
    def __init__(self, store: RedisStore, publisher: Publisher, clock: Callable[[], int]) -> None:
        self.store = store
        self.schedules = ScheduleStore.of(store)
        self.publisher = publisher
        self.clock = clock

    def fire_due(self) -> int:
        """Tick every due schedule; how many runs this pool started."""
        now, started = self.clock(), 0
        for schedule_id in self.schedules.due(now):
            try:
                started += self.tick(schedule_id, now)
            except NotRoutable as exc:
                log.warning("%s; retrying in %.0f s", exc, RETRY_UNROUTABLE_MS / 1000)
        return started

    def previous_running(self, state: ScheduleState) -> bool:
        if not state.last_id:
            return False
        meta = self.store.get_meta(state.last_id)
        return meta is not None and meta.status not in TERMINAL

    def tick(self, schedule_id: str, now: int) -> int:
        stored = self.schedules.get(schedule_id)
        if stored is None:
            return 0
        tick = plan_tick(stored.spec, stored.state, now, self.previous_running(stored.state))
        return self.apply(stored, tick, now)

    def apply(self, stored: StoredSchedule, tick: Tick, now: int) -> int:
        """Write the tick's state (revision-checked), then create what is starting; runs created."""
        sid = stored.spec.schedule_id
        code = self.schedules.advance(sid, stored.rev, tick.state)
        if code != ScheduleCode.DONE:
            return 0  # another pool ticked it (or it was deleted): that pool starts the runs
        for instance_id, nominal in tick.started:
            log.info("schedule %s fires its run for %s", sid, nominal, extra={"instance_id": instance_id})
        return self.finish_starting(sid, now)

    def finish_starting(self, schedule_id: str, now: int) -> int:
        """Create the runs the schedule records as starting, terminate what it asks, then clear both."""
        created = 0
        for _ in range(5):  # a conflict here is another pool doing the same: look again
            stored = self.schedules.get(schedule_id)
            if stored is None or not (stored.state.starting or stored.state.terminating):
                return created
            state = stored.state
            if state.terminating:
                terminate_run(self.store, self.publisher, state.terminating, schedule_id, now)
            try:
                for instance_id, _nominal in state.starting:
                    created += start_run(self.store, self.publisher, stored.spec, instance_id, now)
            except NotRoutable:
                retry = replace(state, due_ms=now + RETRY_UNROUTABLE_MS if state.due_ms is None
                                else min(state.due_ms, now + RETRY_UNROUTABLE_MS))
                self.schedules.advance(schedule_id, stored.rev, retry)
                raise
            done = replace(state, starting=(), terminating="")
            if self.schedules.advance(schedule_id, stored.rev, done) == ScheduleCode.DONE:
                return created
        return created


def describe_previous(store: RedisStore, state: ScheduleState) -> dict[str, Any] | None:
    """The last run's id, nominal time and status (None before the first run)."""
    if not state.last_id:
        return None
    meta = store.get_meta(state.last_id)
    return {"instance_id": state.last_id, "nominal_ms": state.last_nominal_ms,
            "status": meta.status if meta is not None else PURGED}


__all__ = ["NotRoutable", "ScheduleFirer", "describe_previous", "start_run", "terminate_run"]
