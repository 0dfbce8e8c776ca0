"""An instance's execution, derived from its history: what the run page draws.

History records what each orchestration step consumed (completions, timer firings, external events)
and what it scheduled (activities, timers, child workflows); ``StepStarted`` opens each step. From
that alone this module rebuilds:

* **nodes**: one per activity attempt, timer, child workflow and external event, with start, end,
  duration, outcome and the history indexes of the events behind it (for the data inspector);
* **calls**: a logical call and its retry chain: attempt 1 fails, a ``retry`` timer waits, attempt 2
  is scheduled when that timer fires (``TaskScheduled.attempt`` > 1, or a child id ``...-attemptN``);
* **stages**: the calls one step scheduled together, i.e. the workflow's sequence of fan-outs. A stage
  is triggered by the outcomes consumed since the previous stage (so a fan-in is many calls
  triggering one stage);
* **races**: when the workflow moves on while calls of the current stage are still open, those calls
  were not awaited (the losers of a ``when_any``) and the outcomes it did consume are the winners.

What the code's ``yield``s received is recorded on each step's ``StepStarted`` (``awaited`` and the
``when_any`` losers it let go, ``lost``: see ``core.history.task_ref``). With that record the picture
is exact: a stage is triggered by what the step's yields received, a call the code has not awaited
yet stays open (it feeds whichever later stage or end awaits it), and only a recorded ``when_any``
is a race. Histories written before the record (``exact: false`` in the model) are drawn by
inference: a stage is triggered by the outcomes consumed since the previous one, and a call left open
when the workflow moved on is taken for a ``when_any`` loser.

An external event joins the stage of the calls it raced (or, inferred, whose calls were still open
when it arrived) or else forms a stage of its own. ``progress`` (the calls' live state, from the
client) splits calls still open in history into queued, running, and delivered but not yet consumed.
Pure: no Redis, no clock (``now`` is passed in).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.history import (
    ChildCompleted,
    ChildFailed,
    ChildScheduled,
    ContinuedAsNew,
    EventRaised,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    HistoryEvent,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    ref_event_index,
)
from ..core.vocabulary import CONTINUED_AS_NEW, Status

_CHILD_ATTEMPT = re.compile(r"-attempt(\d+)$")
_SCHEDULES = (TaskScheduled, ChildScheduled, TimerCreated)
_OUTCOMES = (TaskCompleted, TaskFailed, ChildCompleted, ChildFailed, TimerFired)


@dataclass
class Node:
    id: str
    kind: str  # activity | child | timer | retry_timer | event
    name: str
    start: int
    sched_index: int
    step: int
    seq: int | None = None
    attempt: int = 1
    # queued | running | completed | failed | fired | waiting | received | cancelled (terminated) |
    # abandoned (the run ended before it) | lost (a race loser the run ended before)
    status: str = "running"
    end: int | None = None
    done_index: int | None = None
    done_step: int | None = None
    child: str | None = None
    fire_at: int | None = None
    error: str | None = None
    call: str = ""
    won: bool = False
    lost: bool = False
    delivered: bool = False  # its outcome is in the inbox, not yet consumed by a step
    started: int | None = None  # when its attempt started running (recorded run time, or live progress)
    summary: str = ""  # its input in a few characters: which call a row is

    @property
    def duration(self) -> int | None:
        return None if self.end is None else max(0, self.end - self.start)


@dataclass
class Stage:
    step: int
    ts: int
    branches: list[str] = field(default_factory=list)  # call ids
    triggers: list[str] = field(default_factory=list)  # call ids (or "start")
    race: bool = False
    progress: dict[str, int] = field(default_factory=dict)  # branch outcomes by status (filled at the end)


def _attempt_of(event: HistoryEvent) -> int:
    if isinstance(event, TaskScheduled):
        return event.attempt
    if isinstance(event, ChildScheduled):
        m = _CHILD_ATTEMPT.search(event.instance_id)
        return int(m.group(1)) if m else 1
    return 1


@dataclass
class _StageWalk:
    """Where ``_Builder.build_stages`` is in its walk over the steps."""

    pending: list[str] = field(default_factory=list)  # call ids whose outcome was consumed since the last stage
    current: Stage | None = None
    finished: set[str] = field(default_factory=set)


class _Builder:
    def __init__(self, events: Sequence[HistoryEvent]) -> None:
        self.events = events
        self.nodes: dict[str, Node] = {}
        self.by_seq: dict[int, Node] = {}
        self.steps: list[tuple[int, list[tuple[int, HistoryEvent]], list[tuple[int, HistoryEvent]]]] = []
        self.calls: dict[str, list[str]] = {}
        self.stages: list[Stage] = []
        self.start_ts: int | None = None
        self.end: dict[str, Any] | None = None
        self.retry_target: dict[str, str] = {}  # failed attempt / retry timer node -> next node in its chain
        self.step_ts: list[int] = []
        self.pending: list[str] = []  # outcomes consumed after the last stage: what the run continues from
        self.markers: list[dict[str, Any]] = []  # suspend / resume, drawn on the timeline
        self.records: list[tuple[tuple[int, ...], tuple[int, ...]] | None] = []  # per step: (awaited, lost)

    # -- pass 1: nodes and per-step consumed/scheduled lists --------------------------------------
    def collect(self) -> None:
        step = -1
        consumed: list[tuple[int, HistoryEvent]] = []
        scheduled: list[tuple[int, HistoryEvent]] = []
        for index, event in enumerate(self.events):
            if isinstance(event, StepStarted):
                if step >= 0:
                    self.steps.append((step, consumed, scheduled))
                step, consumed, scheduled = step + 1, [], []
                self.step_ts.append(event.ts)
                self.records.append(None if event.awaited is None else (event.awaited, event.lost or ()))
                continue
            if step < 0:
                step = 0
                self.step_ts.append(event.ts)
                self.records.append(None)
            if isinstance(event, _SCHEDULES):
                self._add_scheduled(index, step, event)
                scheduled.append((index, event))
            elif isinstance(event, _OUTCOMES):
                self._add_outcome(index, step, event)
                consumed.append((index, event))
            elif isinstance(event, EventRaised):
                node = Node(id=f"ev{index}", kind="event", name=event.name, start=event.ts, end=event.ts,
                            sched_index=index, done_index=index, step=step, done_step=step, status="received")
                node.call = node.id
                self.nodes[node.id] = node
                consumed.append((index, event))
            elif isinstance(event, ExecutionStarted):
                self.start_ts = event.ts if self.start_ts is None else self.start_ts
                consumed.append((index, event))
            elif isinstance(event, (ExecutionCompleted, ExecutionTerminated, ContinuedAsNew)):
                consumed.append((index, event))
            elif isinstance(event, (ExecutionSuspended, ExecutionResumed)):
                self.markers.append({"kind": "suspended" if isinstance(event, ExecutionSuspended) else "resumed",
                                     "ts": event.ts, "index": index})
        if step >= 0:
            self.steps.append((step, consumed, scheduled))

    def _add_scheduled(self, index: int, step: int, event: HistoryEvent) -> None:
        seq = event.seq  # type: ignore[attr-defined]
        if isinstance(event, TimerCreated):
            kind = "retry_timer" if event.purpose == "retry" else "timer"
            node = Node(id=f"n{seq}", kind=kind, name="retry backoff" if kind == "retry_timer" else "timer",
                        start=event.ts, sched_index=index, step=step, seq=seq, fire_at=event.fire_at,
                        status="waiting")
        else:
            kind = "activity" if isinstance(event, TaskScheduled) else "child"
            node = Node(id=f"n{seq}", kind=kind, name=event.name, start=event.ts,  # type: ignore[attr-defined]
                        sched_index=index, step=step, seq=seq, attempt=_attempt_of(event),
                        child=event.instance_id if isinstance(event, ChildScheduled) else None,
                        summary=_summary(event.input))  # type: ignore[attr-defined]
        node.call = node.id
        self.nodes[node.id] = node
        self.by_seq[seq] = node

    def _add_outcome(self, index: int, step: int, event: HistoryEvent) -> None:
        node = self.by_seq.get(event.seq)  # type: ignore[attr-defined]
        if node is None or node.done_index is not None:
            return
        node.end, node.done_index, node.done_step = event.ts, index, step
        run_ms = getattr(event, "run_ms", None)
        if run_ms is not None:
            node.started = max(node.start, event.ts - run_ms)
        if isinstance(event, TimerFired):
            node.status = "fired"
        elif isinstance(event, (TaskFailed, ChildFailed)):
            node.status = "failed"
            node.error = f"{event.failure.error_type}: {event.failure.message}"
        else:
            node.status = "completed"

    # -- pass 2: retry chains ---------------------------------------------------------------------
    def link_retries(self) -> None:
        # A retry timer that fires schedules the next attempt in the same step, in firing order.
        for _step, consumed, scheduled in self.steps:
            fired = [self.by_seq[e.seq] for _, e in consumed
                     if isinstance(e, TimerFired) and e.seq in self.by_seq and self.by_seq[e.seq].kind == "retry_timer"]
            attempts = [self.by_seq[e.seq] for _, e in scheduled
                        if isinstance(e, (TaskScheduled, ChildScheduled)) and _attempt_of(e) > 1]
            for timer, attempt in zip(fired, attempts):
                self.retry_target[timer.id] = attempt.id
        # A failure consumed in a step that creates a retry timer is what the timer retries.
        for _step, consumed, scheduled in self.steps:
            failures = [self.by_seq[e.seq] for _, e in consumed
                        if isinstance(e, (TaskFailed, ChildFailed)) and e.seq in self.by_seq]
            timers = [self.by_seq[e.seq] for _, e in scheduled
                      if isinstance(e, TimerCreated) and e.purpose == "retry"]
            free = list(failures)
            for timer in timers:
                nxt = self.nodes.get(self.retry_target.get(timer.id, ""))
                pick = next((f for f in free if nxt is not None and f.name == nxt.name), free[0] if free else None)
                if pick is not None:
                    free.remove(pick)
                    self.retry_target[pick.id] = timer.id
        # Chains, in seq order so an attempt inherits the call id of the attempt it retries.
        for node in sorted(self.by_seq.values(), key=lambda n: n.seq or 0):
            target = self.nodes.get(self.retry_target.get(node.id, ""))
            if target is not None:
                target.call = node.call
        for node in sorted(self.nodes.values(), key=lambda n: n.sched_index):
            self.calls.setdefault(node.call, []).append(node.id)

    def call_outcome(self, call: str) -> Node:
        return self.nodes[self.calls[call][-1]]

    def _is_internal(self, node: Node) -> bool:
        """Outcomes that only move a retry chain along: they do not advance the workflow."""
        return node.id in self.retry_target

    # -- pass 3: stages, triggers, races -----------------------------------------------------------
    def build_stages(self) -> None:
        walk = _StageWalk()
        for step, consumed, scheduled in self.steps:
            ts = self.step_ts[step]
            for index, event in consumed:
                self._consume(walk, step, index, event)
            calls = [self.by_seq[e.seq] for _, e in scheduled if isinstance(e, _SCHEDULES)]
            fresh = [node.call for node in calls if node.call == node.id]
            if fresh:
                walk.current = self._new_stage(step, ts, fresh, walk.pending, walk.current, walk.finished)
                walk.pending = []
        self.pending = list(dict.fromkeys(walk.pending))
        if self.end is not None and self.end["status"] != Status.TERMINATED:
            # The run ended with calls still open: their results, if they ever come, are dropped.
            for node in self.nodes.values():
                if node.status in ("running", "waiting"):
                    node.status = "abandoned"

    def _consume(self, walk: _StageWalk, step: int, index: int, event: HistoryEvent) -> None:
        """One event a step consumed: what it triggers, finishes or ends."""
        if isinstance(event, ExecutionStarted):
            walk.pending.append("start")
        elif isinstance(event, EventRaised):
            node = self.nodes[f"ev{index}"]
            if walk.current is not None and self._open_branches(walk.current, walk.finished):
                walk.current.branches.append(node.call)
            else:
                walk.current = self._new_stage(step, event.ts, [node.call], walk.pending, walk.current,
                                               walk.finished)
                walk.pending = []
            walk.finished.add(node.call)
            walk.pending.append(node.call)
        elif isinstance(event, _OUTCOMES):
            outcome = self.by_seq.get(event.seq)
            if outcome is None or self._is_internal(outcome) or outcome.done_index != index:
                return
            walk.finished.add(outcome.call)
            if not self.nodes[outcome.call].lost:
                walk.pending.append(outcome.call)
        elif isinstance(event, (ExecutionCompleted, ExecutionTerminated, ContinuedAsNew)):
            self._finish(step, index, event, walk.pending, walk.current, walk.finished)
            walk.pending = []
    # -- pass 3, exact: from the recorded yields ---------------------------------------------------
    @property
    def exact(self) -> bool:
        """Does the history record what its yields received (written since the record existed)?"""
        return any(record is not None for record in self.records)

    def _call_of(self, ref: int) -> str | None:
        index = ref_event_index(ref)
        node = self.nodes.get(f"ev{index}") if index is not None else self.by_seq.get(ref)
        return node.call if node is not None else None

    def build_exact_stages(self) -> None:
        pending: list[str] = []  # calls whose outcome the code received since the last stage
        stage_of: dict[str, Stage] = {}
        for step, consumed, scheduled in self.steps:
            awaited, lost = self.records[step] or ((), ())
            got = [c for c in map(self._call_of, awaited) if c is not None]
            let_go = [c for c in map(self._call_of, lost) if c is not None]
            end: tuple[int, HistoryEvent] | None = None
            for index, event in consumed:
                if isinstance(event, ExecutionStarted):
                    pending.append("start")
                elif isinstance(event, EventRaised):
                    pending = self._place_event(step, index, got, let_go, pending, stage_of)
                elif isinstance(event, (ExecutionCompleted, ExecutionTerminated, ContinuedAsNew)):
                    end = (index, event)
            pending.extend(got)
            self._mark_race(got, let_go, stage_of)
            triggers = list(dict.fromkeys(pending))
            calls = [self.by_seq[e.seq] for _, e in scheduled if isinstance(e, _SCHEDULES)]
            fresh = [node.call for node in calls if node.call == node.id]
            if fresh:
                stage = Stage(step=step, ts=self.step_ts[step], branches=fresh, triggers=triggers)
                self.stages.append(stage)
                stage_of.update((call, stage) for call in fresh)
                pending = []
            if end is not None:
                self.end = self._end_of(step, *end, triggers)
                pending = []
        self.pending = list(dict.fromkeys(pending))
        if self.end is not None:
            terminated = self.end["status"] == Status.TERMINATED
            for node in self.nodes.values():
                if node.status in ("running", "waiting"):
                    node.status = "cancelled" if terminated else "lost" if node.lost else "abandoned"

    def _place_event(self, step: int, index: int, got: list[str], let_go: list[str], pending: list[str],
                     stage_of: dict[str, Stage]) -> list[str]:
        """An external event joins the stage of the calls it raced, or forms its own; returns what
        is still pending after it."""
        node = self.nodes[f"ev{index}"]
        rivals = [stage_of[c] for c in [*let_go, *got] if c != node.call and c in stage_of]
        if rivals:
            rivals[0].branches.append(node.call)
            stage_of[node.call] = rivals[0]
            return pending
        stage = Stage(step=step, ts=node.start, branches=[node.call], triggers=list(dict.fromkeys(pending)))
        self.stages.append(stage)
        stage_of[node.call] = stage
        # Received now: what it waited after is its trigger. Buffered for later: it triggers nothing yet.
        return [] if node.call in got else pending

    def _mark_race(self, got: list[str], let_go: list[str], stage_of: dict[str, Stage]) -> None:
        """A recorded when_any: its losers let go, the winners in the same stage marked."""
        for call in let_go:
            for node_id in self.calls.get(call, [call]):
                self.nodes[node_id].lost = True
            stage = stage_of.get(call)
            if stage is None:
                continue
            stage.race = True
            for winner in got:
                if winner in stage.branches:
                    self.nodes[winner].won = True
                    self.call_outcome(winner).won = True

    def _end_of(self, step: int, index: int, event: HistoryEvent, triggers: list[str]) -> dict[str, Any]:
        return {"status": _end_status(event), "ts": event.ts, "index": index, "step": step, "triggers": triggers}

    # -- live progress of the calls still open in history -------------------------------------------
    def apply_progress(self, progress: dict[int, dict[str, Any]]) -> None:
        """Open activities and children as the store sees them now: queued, running, or delivered
        (completed / failed) and waiting for the step that consumes them."""
        for seq, live in progress.items():
            node = self.by_seq.get(seq)
            if node is None or node.status != "running":
                continue
            state = live.get("state")
            if state in ("queued", "running"):
                node.status = state
                node.started = live.get("started")
            elif state in ("completed", "failed"):
                node.status, node.delivered = state, True
                node.end = live.get("ts")
                node.error = live.get("error")

    def _open_branches(self, stage: Stage, finished: set[str]) -> list[str]:
        return [c for c in stage.branches if c not in finished and not self.nodes[c].lost]

    def _new_stage(self, step: int, ts: int, branches: list[str], triggers: list[str],
                   previous: Stage | None, finished: set[str]) -> Stage:
        self._settle_race(previous, triggers, finished, cancelled=False)
        stage = Stage(step=step, ts=ts, branches=list(branches), triggers=list(dict.fromkeys(triggers)))
        self.stages.append(stage)
        return stage

    def _settle_race(self, stage: Stage | None, triggers: list[str], finished: set[str], cancelled: bool) -> None:
        """The workflow moved on: calls of ``stage`` still open were not awaited (or were cancelled)."""
        if stage is None:
            return
        open_calls = self._open_branches(stage, finished)
        if not open_calls:
            return
        for call in open_calls:
            for node_id in self.calls.get(call, [call]):
                node = self.nodes[node_id]
                if cancelled:
                    if node.status in ("running", "waiting"):
                        node.status = "cancelled"
                else:
                    node.lost = True
        if cancelled:
            return
        winners = [c for c in triggers if c in stage.branches]
        if winners and len(stage.branches) > 1:
            stage.race = True
            for call in winners:
                self.nodes[call].won = True
                self.call_outcome(call).won = True

    def _finish(self, step: int, index: int, event: HistoryEvent, pending: list[str], current: Stage | None,
                finished: set[str]) -> None:
        status = _end_status(event)
        self._settle_race(current, pending, finished, cancelled=status == Status.TERMINATED)
        self.end = {"status": status, "ts": event.ts, "index": index, "step": step,
                    "triggers": list(dict.fromkeys(pending))}


def build_execution(events: Sequence[HistoryEvent], *, now: int, status: str = Status.RUNNING,
                    progress: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The execution model of one instance's history (see the module docstring), JSON-ready.

    ``now`` closes the bars of steps still running; ``status`` is the instance's status, so a
    suspended or pending run is labelled as such; ``progress`` (seq -> ``{"state", ...}``, from
    ``WorkflowClient.get_call_progress``) is the live state of calls still open in history."""
    b = _Builder(events)
    b.collect()
    b.link_retries()
    if b.exact:
        b.build_exact_stages()
    else:
        b.build_stages()
    if progress:
        b.apply_progress(progress)
    for stage in b.stages:
        for call in stage.branches:
            outcome = b.call_outcome(call).status
            stage.progress[outcome] = stage.progress.get(outcome, 0) + 1
    nodes = []
    for node in sorted(b.nodes.values(), key=lambda n: (n.start, n.sched_index)):
        item = dict(vars(node))  # flat fields only: cheaper than asdict for thousands of nodes
        item["duration"] = node.duration
        nodes.append(item)
    ends = [n.end for n in b.nodes.values() if n.end is not None]
    start = b.start_ts if b.start_ts is not None else (events[0].ts if events else now)
    finish = b.end["ts"] if b.end else None
    return {
        "exact": b.exact,
        "status": status,
        "start": start,
        "end": finish,
        "now": now,
        "span_end": finish if finish is not None else max([now, *ends]),
        "nodes": nodes,
        "calls": b.calls,
        "stages": [dict(vars(s)) for s in b.stages],
        "finish": b.end,
        "pending_triggers": b.pending,
        "markers": b.markers,
        "steps": len(b.steps),
        "events": len(events),
        "counts": {
            "activities": sum(n.kind == "activity" for n in b.nodes.values()),
            "timers": sum(n.kind in ("timer", "retry_timer") for n in b.nodes.values()),
            "children": sum(n.kind == "child" for n in b.nodes.values()),
            "events": sum(n.kind == "event" for n in b.nodes.values()),
            "retries": sum(n.kind in ("activity", "child") and n.attempt > 1 for n in b.nodes.values()),
            "max_parallel": max((len(s.branches) for s in b.stages), default=0),
        },
        "progress": _progress(b),
    }


def _end_status(event: HistoryEvent) -> str:
    if isinstance(event, ExecutionTerminated):
        return Status.TERMINATED
    if isinstance(event, ContinuedAsNew):
        return CONTINUED_AS_NEW
    return str(event.status)  # type: ignore[attr-defined]


def _summary(value: Any, width: int = 28) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _progress(b: _Builder) -> dict[str, int]:
    """Activities and children by their current status (the outcome of each call's last attempt)."""
    out: dict[str, int] = {}
    for call in b.calls:
        node = b.call_outcome(call)
        if node.kind in ("activity", "child"):
            out[node.status] = out.get(node.status, 0) + 1
    return out


__all__ = ["build_execution", "Node", "Stage"]
