"""Durable schedules, the pure part: what a schedule is, when it fires, and what one tick decides.

A schedule starts a workflow at *nominal times*: the matches of a cron expression in a time zone,
or every fixed interval from an anchor, between optional start and end dates. Each nominal time has
one instance id (``run_instance_id``: the schedule id and the time), so however many pools tick the
schedule, and whatever Redis restarts in between, each nominal time starts at most one run: the
store creates an instance only if its id is absent.

``plan_tick`` is a tick of one schedule: given its state, the time and whether its previous run is
still going, it decides the runs to start, what to do with the previous run (the overlap policy),
and the new state. The worker (worker/schedules.py) reads, plans, writes with a revision check and
starts the runs; here there is no clock, store or randomness (jitter is a hash of the nominal time,
so every pool computes the same delay).

Overlap policies (what a nominal time does while the previous run has not finished):

* ``skip`` (default): the nominal time is skipped.
* ``buffer_one``: it waits, and starts when the previous run ends; one at most waits, later ones
  are skipped.
* ``allow_all``: it starts anyway.
* ``cancel_other``: the previous run is terminated, and this one starts once it has ended.
* ``terminate_other``: the previous run is terminated, and this one starts at once.

Catch-up: nominal times missed while no pool ran (an outage) still start if they are no older than
``catchup_window`` when a pool next ticks; older ones are counted as ``missed`` and not run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .cron import Cron, zone
from .identifiers import validate_instance_id, validate_name

OVERLAP_POLICIES = ("skip", "buffer_one", "allow_all", "cancel_other", "terminate_other")
DEFAULT_CATCHUP_MS = 60_000
MAX_FIRES_PER_TICK = 100  # a longer catch-up continues at the next tick
MAX_SCHEDULE_ID = 120  # leaves room in the instance id for the nominal time
MIN_INTERVAL_MS = 1000
RECENT_RUNS = 10  # runs a schedule remembers (the dashboard's "last runs")
BUFFER_RECHECK_MS = 1000  # a waiting (buffered) run looks again at its predecessor this often


def run_instance_id(schedule_id: str, nominal_ms: int) -> str:
    """The instance id of the run a schedule starts for a nominal time: ``<id>-20261202T101500Z``
    (with milliseconds when the time has them)."""
    moment = datetime.fromtimestamp(nominal_ms / 1000, tz=UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S")
    if nominal_ms % 1000:
        stamp += f".{nominal_ms % 1000:03d}"
    return f"{schedule_id}-{stamp}Z"


def manual_instance_id(schedule_id: str, at_ms: int) -> str:
    """The instance id of a run started by ``trigger`` at ``at_ms``."""
    return run_instance_id(schedule_id, at_ms).replace(f"{schedule_id}-", f"{schedule_id}-manual-", 1)


def _ms(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a time in ms since the epoch, got {value!r}")
    return value


@dataclass(frozen=True)
class ScheduleSpec:
    """What a user asks for. Times are ms since the epoch; durations ms."""

    schedule_id: str
    workflow: str
    cron: str | None = None
    every_ms: int | None = None
    input: Any = None
    timezone: str = "UTC"
    jitter_ms: int = 0
    start_ms: int | None = None
    end_ms: int | None = None
    overlap: str = "skip"
    catchup_window_ms: int = DEFAULT_CATCHUP_MS
    app_id: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        validate_instance_id(self.schedule_id, "schedule id")
        if len(self.schedule_id) > MAX_SCHEDULE_ID:
            raise ValueError(f"schedule id must be at most {MAX_SCHEDULE_ID} characters, got {len(self.schedule_id)}")
        validate_name(self.workflow, "workflow name")
        if self.app_id is not None:
            validate_name(self.app_id, "app_id")
        if (self.cron is None) == (self.every_ms is None):
            raise ValueError("a schedule needs exactly one of cron (an expression) and every (an interval)")
        if self.cron is not None:
            Cron.parse(self.cron)
        if self.every_ms is not None and (isinstance(self.every_ms, bool) or not isinstance(self.every_ms, int)
                                          or self.every_ms < MIN_INTERVAL_MS):
            raise ValueError(f"every must be an interval of at least 1 second, got {self.every_ms!r} ms")
        zone(self.timezone)
        for what, value in (("jitter", self.jitter_ms), ("catchup_window", self.catchup_window_ms)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{what} must be a non-negative duration, got {value!r} ms")
        _ms(self.start_ms, "start_at")
        _ms(self.end_ms, "end_at")
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError("end_at must be after start_at")
        if self.overlap not in OVERLAP_POLICIES:
            raise ValueError(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {self.overlap!r}")
        if not isinstance(self.note, str):
            raise ValueError(f"note must be text, got {type(self.note).__name__}")

    # -- nominal times ------------------------------------------------------------------------------
    def next_after(self, after_ms: int) -> int | None:
        """The first nominal time strictly after ``after_ms`` within start/end, or None (ended)."""
        floor = after_ms
        if self.start_ms is not None and floor < self.start_ms - 1:
            floor = self.start_ms - 1
        if self.cron is not None:
            found = Cron.parse(self.cron).next_after(floor, zone(self.timezone))
        else:
            assert self.every_ms is not None
            anchor = self.start_ms if self.start_ms is not None else 0
            steps = (floor - anchor) // self.every_ms + 1
            found = anchor + max(steps, 0) * self.every_ms
        if found is None or (self.end_ms is not None and found > self.end_ms):
            return None
        return found

    def upcoming(self, after_ms: int, count: int) -> list[int]:
        """The next ``count`` nominal times after ``after_ms``."""
        out: list[int] = []
        at: int | None = after_ms
        while len(out) < count and at is not None:
            at = self.next_after(at)
            if at is not None:
                out.append(at)
        return out

    def between(self, start_ms: int, end_ms: int, limit: int) -> list[int]:
        """Nominal times in ``[start_ms, end_ms]``, at most ``limit`` (a ``ValueError`` beyond)."""
        out: list[int] = []
        at = self.next_after(start_ms - 1)
        while at is not None and at <= end_ms:
            if len(out) == limit:
                raise ValueError(f"more than {limit} nominal times between those moments; backfill a shorter range")
            out.append(at)
            at = self.next_after(at)
        return out

    def jitter_of(self, nominal_ms: int) -> int:
        """The delay (ms, in ``[0, jitter]``) of the run for ``nominal_ms``: the same in every pool."""
        if not self.jitter_ms:
            return 0
        digest = hashlib.sha256(f"{self.schedule_id}|{nominal_ms}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (self.jitter_ms + 1)

    # -- stored form ----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"id": self.schedule_id, "workflow": self.workflow, "cron": self.cron,
                           "every_ms": self.every_ms, "input": self.input, "timezone": self.timezone,
                           "jitter_ms": self.jitter_ms, "start_ms": self.start_ms, "end_ms": self.end_ms,
                           "overlap": self.overlap, "catchup_window_ms": self.catchup_window_ms,
                           "app_id": self.app_id, "note": self.note}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ScheduleSpec:
        d = json.loads(text)
        return cls(d["id"], d["workflow"], cron=d.get("cron"), every_ms=d.get("every_ms"), input=d.get("input"),
                   timezone=d.get("timezone", "UTC"), jitter_ms=d.get("jitter_ms", 0), start_ms=d.get("start_ms"),
                   end_ms=d.get("end_ms"), overlap=d.get("overlap", "skip"),
                   catchup_window_ms=d.get("catchup_window_ms", DEFAULT_CATCHUP_MS), app_id=d.get("app_id"),
                   note=d.get("note", ""))


@dataclass(frozen=True)
class ScheduleState:
    """What the store keeps besides the spec. ``starting``: runs decided but perhaps not yet created
    (created by whichever pool ticks next, idempotently); ``terminating``: a previous run to terminate."""

    next_ms: int | None  # the next nominal time (None: the schedule has ended)
    due_ms: int | None  # when a pool must tick it next (None: nothing to do)
    paused: bool = False
    last_id: str = ""  # the run started last
    last_nominal_ms: int | None = None
    buffered_ms: int | None = None  # a nominal time waiting for the previous run to end
    starting: tuple[tuple[str, int], ...] = ()  # (instance id, nominal ms) to create
    terminating: str = ""
    recent: tuple[tuple[str, int], ...] = ()  # the last runs started, newest first
    hurry: bool = False  # time skipping: the next nominal time fires at the next tick, however far ahead
    fired: int = 0
    skipped: int = 0
    missed: int = 0

    def to_fields(self) -> dict[str, str]:
        return {"next": "" if self.next_ms is None else str(self.next_ms), "paused": "1" if self.paused else "0",
                "last_id": self.last_id,
                "last_nominal": "" if self.last_nominal_ms is None else str(self.last_nominal_ms),
                "buffered": "" if self.buffered_ms is None else str(self.buffered_ms),
                "starting": json.dumps([list(s) for s in self.starting]), "terminating": self.terminating,
                "recent": json.dumps([list(r) for r in self.recent]), "hurry": "1" if self.hurry else "0",
                "fired": str(self.fired),
                "skipped": str(self.skipped), "missed": str(self.missed)}

    @classmethod
    def from_fields(cls, raw: dict[str, str], due_ms: int | None) -> ScheduleState:
        def number(name: str) -> int | None:
            value = raw.get(name, "")
            return int(value) if value else None

        return cls(next_ms=number("next"), due_ms=due_ms, paused=raw.get("paused") == "1",
                   last_id=raw.get("last_id", ""), last_nominal_ms=number("last_nominal"),
                   buffered_ms=number("buffered"),
                   starting=tuple((str(i), int(n)) for i, n in json.loads(raw.get("starting") or "[]")),
                   terminating=raw.get("terminating", ""),
                   recent=tuple((str(i), int(n)) for i, n in json.loads(raw.get("recent") or "[]")),
                   hurry=raw.get("hurry") == "1",
                   fired=number("fired") or 0, skipped=number("skipped") or 0, missed=number("missed") or 0)


def initial_state(spec: ScheduleSpec, now_ms: int, *, paused: bool = False) -> ScheduleState:
    """A new schedule's state: its first nominal time after ``now_ms``."""
    first = spec.next_after(now_ms)
    due = None if first is None or paused else first + spec.jitter_of(first)
    return ScheduleState(next_ms=first, due_ms=due, paused=paused)


@dataclass
class Tick:
    """What one tick decided: the new state (``starting`` lists the runs to create now)."""

    state: ScheduleState
    started: list[tuple[str, int]] = field(default_factory=list)


def _started(state: ScheduleState, runs: list[tuple[str, int]]) -> ScheduleState:
    if not runs:
        return state
    recent = tuple(reversed(runs)) + state.recent
    return replace(state, last_id=runs[-1][0], last_nominal_ms=runs[-1][1], starting=state.starting + tuple(runs),
                   recent=recent[:RECENT_RUNS], fired=state.fired + len(runs))


@dataclass
class _Decisions:
    """What a tick has decided so far (``plan_tick``'s working state)."""

    last_id: str
    running: bool
    buffered: int | None
    terminating: str
    skipped: int
    runs: list[tuple[str, int]] = field(default_factory=list)

    def start(self, run: tuple[str, int]) -> None:
        self.runs.append(run)
        self.running = True

    def previous(self) -> str:
        return self.runs[-1][0] if self.runs else self.last_id

    def nominal(self, policy: str, run: tuple[str, int]) -> None:
        """The overlap policy applied to one due nominal time."""
        if not self.running or policy == "allow_all":
            self.start(run)
        elif policy == "skip":
            self.skipped += 1
        elif policy == "buffer_one":
            if self.buffered is None:
                self.buffered = run[1]
            else:
                self.skipped += 1
        elif policy == "cancel_other":
            self.terminating = self.previous()
            if self.buffered is not None:
                self.skipped += 1
            self.buffered = run[1]
        else:  # terminate_other
            self.terminating = self.previous()
            self.start(run)


def plan_tick(spec: ScheduleSpec, state: ScheduleState, now_ms: int, previous_running: bool) -> Tick:
    """One tick at ``now_ms``: start what is due, apply the overlap policy, move the state on.

    ``previous_running``: has the run started last (``state.last_id``) not finished yet?"""
    if state.paused:
        return Tick(replace(state, due_ms=None))
    d = _Decisions(state.last_id, previous_running, state.buffered_ms, state.terminating, state.skipped)
    missed = state.missed
    if d.buffered is not None and not d.running:
        d.start((run_instance_id(spec.schedule_id, d.buffered), d.buffered))
        d.buffered = None
    nxt = state.next_ms
    # Time skipping (orchestrator.testing.skip_schedules) asks for the next nominal time now.
    take_head = state.hurry
    for _ in range(MAX_FIRES_PER_TICK):
        if nxt is None or not (take_head or nxt + spec.jitter_of(nxt) <= now_ms):
            break
        take_head = False
        if now_ms - nxt > spec.catchup_window_ms:
            # Missed by more than the catch-up window (no pool ran): jump to the window's start.
            missed += 1
            nxt = spec.next_after(max(nxt, now_ms - spec.catchup_window_ms - 1))
            continue
        d.nominal(spec.overlap, (run_instance_id(spec.schedule_id, nxt), nxt))
        nxt = spec.next_after(nxt)
    due = None if nxt is None else nxt + spec.jitter_of(nxt)
    if d.buffered is not None:
        due = now_ms + BUFFER_RECHECK_MS if due is None else min(due, now_ms + BUFFER_RECHECK_MS)
    new = replace(state, next_ms=nxt, due_ms=due, buffered_ms=d.buffered, terminating=d.terminating,
                  skipped=d.skipped, missed=missed, hurry=False)
    return Tick(_started(new, d.runs), d.runs)


def manual_run(spec: ScheduleSpec, state: ScheduleState, now_ms: int, previous_running: bool,
               overlap: str | None = None) -> Tick:
    """``trigger``: a run now, outside the nominal times, under ``overlap`` (default: the schedule's).
    With ``skip`` or ``buffer_one`` while the previous run goes on, nothing starts (``started`` empty)."""
    policy = overlap or spec.overlap
    if policy not in OVERLAP_POLICIES:
        raise ValueError(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {policy!r}")
    run = (manual_instance_id(spec.schedule_id, now_ms), now_ms)
    if previous_running and policy in ("skip", "buffer_one"):
        return Tick(state)
    # A manual run does not wait: cancel_other, like terminate_other, ends the previous run and starts.
    terminating = state.last_id if previous_running and policy in ("cancel_other", "terminate_other") \
        else state.terminating
    return Tick(_started(replace(state, terminating=terminating), [run]), [run])


__all__ = ["DEFAULT_CATCHUP_MS", "OVERLAP_POLICIES", "ScheduleSpec", "ScheduleState", "Tick", "initial_state",
           "manual_run", "plan_tick", "run_instance_id"]
