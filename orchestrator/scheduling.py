"""Durable schedules, the client's side: create, list, pause, resume, delete, trigger, backfill.

``WorkflowClient``'s schedule methods call these; the CLI (``orchestrator schedule ...``), the HTTP
API (``/api/schedules``) and the dashboard go through the client. The pools fire the schedules
(worker/schedules.py); what a schedule is and how it decides is ``core/schedule.py``; docs/schedules.md
is the user's guide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from . import apilog
from .core.context import registered_name, to_ms
from .core.errors import OrchestratorError, ScheduleExistsError, ScheduleNotFoundError
from .core.schedule import DEFAULT_CATCHUP_MS, ScheduleSpec, ScheduleState, initial_state, manual_run, run_instance_id
from .store.flow import FlowStore
from .store.redis_store import RedisStore
from .store.schedules import ScheduleStore, StoredSchedule
from .store.scripts import ScheduleCode
from .worker.publisher import Publisher
from .worker.schedules import ScheduleFirer, describe_previous, start_run

BACKFILL_LIMIT = 1000
UPCOMING = 5


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _duration_ms(value: timedelta | float | int | None, what: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{what} must be a timedelta or a number of seconds, got {value!r}")
    return int(value * 1000)


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule as the client shows it: spec, state, next nominal times, last runs."""

    spec: ScheduleSpec
    state: ScheduleState
    created_ms: int
    upcoming: list[int]
    last_run: dict[str, Any] | None

    @property
    def schedule_id(self) -> str:
        return self.spec.schedule_id

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def next_run(self) -> datetime | None:
        at = self.upcoming[0] if self.upcoming else None
        return datetime.fromtimestamp(at / 1000, tz=UTC) if at is not None else None

    def to_dict(self) -> dict[str, Any]:
        s, st = self.spec, self.state
        last = dict(self.last_run) if self.last_run else None
        if last is not None:
            last["nominal_time"] = _iso(last.pop("nominal_ms"))
        return {
            "schedule_id": s.schedule_id, "workflow": s.workflow, "cron": s.cron,
            "every_seconds": s.every_ms / 1000 if s.every_ms is not None else None, "timezone": s.timezone,
            "input": s.input, "jitter_seconds": s.jitter_ms / 1000, "start_at": _iso(s.start_ms),
            "end_at": _iso(s.end_ms), "overlap": s.overlap, "catchup_window_seconds": s.catchup_window_ms / 1000,
            "app_id": s.app_id, "note": s.note, "paused": st.paused, "created_at": _iso(self.created_ms),
            "next_runs": [_iso(t) for t in self.upcoming], "last_run": last,
            "buffered": _iso(st.buffered_ms),
            "recent_runs": [{"instance_id": i, "nominal_time": _iso(n)} for i, n in st.recent],
            "fired": st.fired, "skipped": st.skipped, "missed": st.missed,
        }


class Schedules:
    def __init__(self, store: RedisStore, publisher: Publisher, clock: Callable[[], int]) -> None:
        self.store = store
        self.schedules = ScheduleStore.of(store)
        self.firer = ScheduleFirer(store, publisher, clock)
        self.publisher = publisher
        self.clock = clock

    def spec(self, schedule_id: str, workflow: Callable[..., Any] | str, *, cron: str | None = None,
             every: timedelta | float | None = None, input: Any = None, timezone: str = "UTC",
             jitter: timedelta | float | None = None, start_at: datetime | None = None,
             end_at: datetime | None = None, overlap: str = "skip", catchup_window: timedelta | float | None = None,
             app_id: str | None = None, note: str = "") -> ScheduleSpec:
        every_ms = _duration_ms(every, "every", 0) if every is not None else None
        return ScheduleSpec(
            schedule_id, registered_name(workflow), cron=cron, every_ms=every_ms, input=input, timezone=timezone,
            jitter_ms=_duration_ms(jitter, "jitter", 0),
            start_ms=to_ms(start_at, "start_at") if start_at is not None else None,
            end_ms=to_ms(end_at, "end_at") if end_at is not None else None, overlap=overlap,
            catchup_window_ms=_duration_ms(catchup_window, "catchup_window", DEFAULT_CATCHUP_MS),
            app_id=app_id, note=note)

    def create(self, spec: ScheduleSpec, *, paused: bool = False, replace_existing: bool = False) -> ScheduleInfo:
        now = self.clock()
        state = initial_state(spec, now, paused=paused)
        if replace_existing:
            old = self.schedules.get(spec.schedule_id)
            if old is not None:
                # Its runs so far stay its runs: the last run and counters carry over to the new spec.
                state = replace(state, last_id=old.state.last_id, last_nominal_ms=old.state.last_nominal_ms,
                                recent=old.state.recent, fired=old.state.fired, skipped=old.state.skipped,
                                missed=old.state.missed, starting=old.state.starting)
                self.schedules.replace(spec, state, now)
                return self.get(spec.schedule_id)
        if not self.schedules.create(spec, state, now):
            raise ScheduleExistsError(f"a schedule with id {spec.schedule_id!r} already exists; delete it first "
                                      "or pass replace=True")
        return self.get(spec.schedule_id)

    def _stored(self, schedule_id: str) -> StoredSchedule:
        stored = self.schedules.get(schedule_id)
        if stored is None:
            raise ScheduleNotFoundError(f"no schedule with id {schedule_id!r}")
        return stored

    def get(self, schedule_id: str) -> ScheduleInfo:
        stored = self._stored(schedule_id)
        return self._info(stored)

    def _info(self, stored: StoredSchedule) -> ScheduleInfo:
        st = stored.state
        upcoming = [] if st.paused else ([st.next_ms] + stored.spec.upcoming(st.next_ms, UPCOMING - 1)
                                         if st.next_ms is not None else [])
        return ScheduleInfo(stored.spec, st, stored.created_ms, upcoming, describe_previous(self.store, st))

    def all(self, offset: int = 0, limit: int = 100) -> list[ScheduleInfo]:
        out = []
        for schedule_id in self.schedules.ids(offset, limit):
            stored = self.schedules.get(schedule_id)
            if stored is not None:
                out.append(self._info(stored))
        return out

    def _update(self, schedule_id: str, change: Callable[[StoredSchedule], ScheduleState]) -> ScheduleInfo:
        for _ in range(20):
            stored = self._stored(schedule_id)
            if self.schedules.advance(schedule_id, stored.rev, change(stored)) == ScheduleCode.DONE:
                return self.get(schedule_id)
        raise OrchestratorError(f"schedule {schedule_id!r} kept changing under this update; try again")

    def pause(self, schedule_id: str, note: str | None = None) -> ScheduleInfo:
        info = self._update(schedule_id, lambda s: replace(s.state, paused=True, due_ms=None))
        if note is not None:
            self._set_note(schedule_id, note)
        return self.get(schedule_id) if note is not None else info

    def resume(self, schedule_id: str) -> ScheduleInfo:
        """Nominal times that passed while paused are not run: it goes on from now."""
        def resumed(s: StoredSchedule) -> ScheduleState:
            if not s.state.paused:
                return s.state
            fresh = initial_state(s.spec, self.clock())
            return replace(s.state, paused=False, next_ms=fresh.next_ms, due_ms=fresh.due_ms)
        return self._update(schedule_id, resumed)

    def _set_note(self, schedule_id: str, note: str) -> None:
        stored = self._stored(schedule_id)
        self.schedules.replace(replace(stored.spec, note=note), stored.state, self.clock())

    def delete(self, schedule_id: str) -> None:
        if not self.schedules.delete(schedule_id):
            raise ScheduleNotFoundError(f"no schedule with id {schedule_id!r}")

    def trigger(self, schedule_id: str, overlap: str | None = None) -> str | None:
        """Start a run now (id ``<schedule>-manual-<time>``) under the overlap policy (default: the
        schedule's); None when the policy skips it because the previous run is still going."""
        for _ in range(20):
            stored = self._stored(schedule_id)
            now = self.clock()
            tick = manual_run(stored.spec, stored.state, now, self.firer.previous_running(stored.state), overlap)
            if tick.state == stored.state:
                return None
            if self.schedules.advance(schedule_id, stored.rev, tick.state) == ScheduleCode.DONE:
                self.firer.finish_starting(schedule_id, now)
                return tick.started[0][0] if tick.started else None
        raise OrchestratorError(f"schedule {schedule_id!r} kept changing under this trigger; try again")

    def backfill(self, schedule_id: str, start: datetime, end: datetime) -> dict[str, list[str]]:
        """Start the runs of every nominal time in ``[start, end]`` that has none yet (each under its
        nominal time's instance id, so a time that already ran, by schedule or by an earlier backfill,
        is not run again). Backfilled runs do not wait for each other (overlap allow_all)."""
        stored = self._stored(schedule_id)
        first, last = to_ms(start, "start"), to_ms(end, "end")
        if last < first:
            raise ValueError("backfill end must not be before its start")
        times = stored.spec.between(first, last, BACKFILL_LIMIT)
        out: dict[str, list[str]] = {"started": [], "existed": []}
        now = self.clock()
        for nominal in times:
            instance_id = run_instance_id(schedule_id, nominal)
            created = start_run(self.store, self.publisher, stored.spec, instance_id, now)
            out["started" if created else "existed"].append(instance_id)
        return out


class ScheduleCalls:
    """The client's schedule and flow-control calls (a part of ``WorkflowClient``, kept here so the
    client module stays readable); it uses the client's store, publisher, clock and payload check."""

    store: RedisStore
    _outgoing: Publisher
    clock: Callable[[], int]
    _payload: Callable[[Any, str], Any]

    # -- flow control (docs/flow-control.md) -----------------------------------------------------------
    def flow_control_status(self) -> list[dict[str, Any]]:
        """Every limited workflow type and activity: slots running and work waiting, by key."""
        flow = FlowStore.of(self.store)
        return [flow.status(scope) for scope in flow.scopes()]

    # -- schedules (docs/schedules.md) ------------------------------------
    @property
    def schedules(self) -> Schedules:
        made: Schedules | None = getattr(self, "_schedules", None)
        if made is None or made.store is not self.store:
            made = self._schedules = Schedules(self.store, self._outgoing, self.clock)
        return made

    @apilog.logged("schedule_create")
    def create_schedule(self, schedule_id: str, workflow: Callable[..., Any] | str, *, cron: str | None = None,
                        every: timedelta | float | None = None, input: Any = None, timezone: str = "UTC",
                        jitter: timedelta | float | None = None, start_at: datetime | None = None,
                        end_at: datetime | None = None, overlap: str = "skip",
                        catchup_window: timedelta | float | None = None, app_id: str | None = None,
                        note: str = "", paused: bool = False, replace: bool = False) -> ScheduleInfo:
        """A durable schedule starting ``workflow`` at each match of ``cron`` (in ``timezone``) or
        ``every`` interval (a timedelta or seconds), between ``start_at`` and ``end_at``; see
        docs/schedules.md for ``jitter``, ``overlap`` and ``catchup_window``. ``replace`` replaces
        the spec of an existing schedule of that id (its runs so far stay its runs)."""
        spec = self.schedules.spec(schedule_id, workflow, cron=cron, every=every,
                                   input=self._payload(input, f"input of schedule {schedule_id!r}"),
                                   timezone=timezone, jitter=jitter, start_at=start_at, end_at=end_at,
                                   overlap=overlap, catchup_window=catchup_window, app_id=app_id, note=note)
        return self.schedules.create(spec, paused=paused, replace_existing=replace)

    def get_schedule(self, schedule_id: str) -> ScheduleInfo:
        return self.schedules.get(schedule_id)

    def list_schedules(self, *, offset: int = 0, limit: int = 100) -> list[ScheduleInfo]:
        return self.schedules.all(offset, limit)

    @apilog.logged("schedule_pause")
    def pause_schedule(self, schedule_id: str, *, note: str | None = None) -> ScheduleInfo:
        return self.schedules.pause(schedule_id, note)

    @apilog.logged("schedule_resume")
    def resume_schedule(self, schedule_id: str) -> ScheduleInfo:
        return self.schedules.resume(schedule_id)

    @apilog.logged("schedule_delete")
    def delete_schedule(self, schedule_id: str) -> None:
        self.schedules.delete(schedule_id)

    @apilog.logged("schedule_trigger")
    def trigger_schedule(self, schedule_id: str, *, overlap: str | None = None) -> str | None:
        return self.schedules.trigger(schedule_id, overlap)

    @apilog.logged("schedule_backfill")
    def backfill_schedule(self, schedule_id: str, start: datetime, end: datetime) -> dict[str, list[str]]:
        return self.schedules.backfill(schedule_id, start, end)


__all__ = ["ScheduleCalls", "ScheduleExistsError", "ScheduleInfo", "ScheduleNotFoundError", "Schedules"]
