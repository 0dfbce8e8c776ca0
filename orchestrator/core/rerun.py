"""Rerun from a step: what a new instance takes over from a finished one's history. Pure.

A *step* here is a **call**: one ``call_activity`` or ``call_child_workflow`` of the workflow, counted
from 1 in the order the code made them (by sequence number); the attempts of a retried call are one
call. ``from_step=K`` keeps the recorded results of calls 1..K-1 and runs call K and everything after
it again, against the code deployed now, optionally with a new input.

How: a history is a list of orchestration steps, each led by ``StepStarted``. The new instance's
history is the original's orchestration steps *before* the one that scheduled call K, copied as
they are, so replay accepts them: they are exactly what the code asked for, with the results it got.
The events that orchestration step consumed (the result of call K-1, an external event, the start)
become the new instance's inbox, so its first step runs that step again and asks for call K anew.
Calls scheduled before the cut whose results arrived after it get those recorded results in the
inbox too (they are calls before K); timers scheduled before the cut that never fired are armed
again at their recorded time.

Consequences worth knowing: calls scheduled in the same orchestration step as call K (a fan-out)
run again with it; external events the original received after that step are not carried over
(raise them again); a call before K that never finished in the original cannot be reused, and the
plan says which ``from_step`` to use instead.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import OrchestratorError
from .history import (
    ChildCompleted,
    ChildFailed,
    ChildScheduled,
    EventRaised,
    ExecutionStarted,
    HistoryEvent,
    StepStarted,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)

KEEP_INPUT: Any = type("KeepInput", (), {"__repr__": lambda self: "KEEP_INPUT"})()
# What a step consumes from its inbox and may be handed to the rerun's first step again. Control
# events (suspend, resume, terminate) were operators acting on the original, so they stay behind.
_INPUTS = (ExecutionStarted, TaskCompleted, TaskFailed, TimerFired, EventRaised, ChildCompleted, ChildFailed)
_OUTCOMES = (TaskCompleted, TaskFailed, TimerFired, ChildCompleted, ChildFailed)
_ATTEMPT_ID = re.compile(r"^(.*)-attempt(\d+)$")


class RerunError(OrchestratorError, ValueError):
    """The requested rerun cannot be built from this history (the message says why and what works)."""


@dataclass(frozen=True)
class Call:
    """One call of the workflow: its 1-based number, the seq of its first attempt, kind and name."""

    number: int
    seq: int
    kind: str  # "activity" | "child"
    name: str


@dataclass
class RerunPlan:
    started: ExecutionStarted  # the new instance's start (new or original input, original version)
    history: list[HistoryEvent]  # its history: the original's steps before the cut
    inbox: list[HistoryEvent]  # what its first step consumes
    timers: list[TimerCreated] = field(default_factory=list)  # timers to arm again
    call: Call | None = None  # the call the rerun starts from
    reused: list[Call] = field(default_factory=list)  # calls whose recorded results are kept


def calls(history: Sequence[HistoryEvent]) -> list[Call]:
    """The workflow's calls in the order it made them (retry attempts folded into their call)."""
    out: list[Call] = []
    child_ids: dict[str, str] = {}  # instance id of a first attempt -> child workflow name
    for event in history:
        if isinstance(event, TaskScheduled) and event.attempt == 1:
            out.append(Call(len(out) + 1, event.seq, "activity", event.name))
        elif isinstance(event, ChildScheduled):
            match = _ATTEMPT_ID.match(event.instance_id)
            if match and child_ids.get(match.group(1)) == event.name:
                continue  # attempt N of a retried child: "<first id>-attemptN"
            child_ids[event.instance_id] = event.name
            out.append(Call(len(out) + 1, event.seq, "child", event.name))
    return out


def _steps(history: Sequence[HistoryEvent]) -> list[list[HistoryEvent]]:
    steps: list[list[HistoryEvent]] = []
    for event in history:
        if isinstance(event, StepStarted) or not steps:
            steps.append([])
        steps[-1].append(event)
    return steps


def _with_input(event: HistoryEvent, new_input: Any) -> HistoryEvent:
    if isinstance(event, ExecutionStarted) and new_input is not KEEP_INPUT:
        return dataclasses.replace(event, input=new_input)
    return event


def plan_rerun(history: Sequence[HistoryEvent], from_step: int, *, input: Any = KEEP_INPUT) -> RerunPlan:
    """The new instance's history, inbox and timers for a rerun from call ``from_step``."""
    if isinstance(from_step, bool) or not isinstance(from_step, int):
        raise TypeError(f"from_step must be an int (the number of a call, from 1), got {from_step!r}")
    made = calls(history)
    if not made:
        raise RerunError("the instance made no activity or child workflow calls: there is no step to rerun from; "
                         "start it again instead")
    if not 1 <= from_step <= len(made):
        raise RerunError(f"from_step must be between 1 and {len(made)} (the instance made {len(made)} calls), "
                         f"got {from_step}")
    target = made[from_step - 1]
    steps = _steps(history)
    cut = next(i for i, step in enumerate(steps)
               if any(isinstance(e, (TaskScheduled, ChildScheduled)) and e.seq == target.seq for e in step))
    before = [_with_input(e, input) for step in steps[:cut] for e in step]
    inbox = [_with_input(e, input) for e in steps[cut] if isinstance(e, _INPUTS)]
    started = next((e for e in [*before, *inbox] if isinstance(e, ExecutionStarted)), None)
    if started is None:
        raise RerunError("the history has no ExecutionStarted event: it is not a whole instance's history")

    scheduled = {e.seq: e for e in before if isinstance(e, (TaskScheduled, ChildScheduled, TimerCreated))}
    resolved = {e.seq for e in [*before, *inbox] if isinstance(e, _OUTCOMES)}
    later = [e for step in steps[cut + 1:] for e in step if isinstance(e, _OUTCOMES)]
    later_outcome: dict[int, HistoryEvent] = {}
    for outcome in later:
        later_outcome.setdefault(outcome.seq, outcome)
    timers: list[TimerCreated] = []
    carried: set[int] = set()
    for seq, event in scheduled.items():
        if seq in resolved:
            continue
        if seq in later_outcome:
            carried.add(seq)
            continue
        if isinstance(event, TimerCreated):
            guarded = seq - 1  # a timeout timer is scheduled right after the attempt it guards
            if event.purpose == "timeout" and (guarded in resolved or guarded in later_outcome):
                continue  # the attempt finished first: the timer was disarmed
            timers.append(event)
            continue
        number = max([c.number for c in made if c.seq <= seq] or [1])
        raise RerunError(
            f"call #{seq} ({'activity' if isinstance(event, TaskScheduled) else 'child workflow'} "
            f"{getattr(event, 'name', '')!r}) was scheduled before step "
            f"{from_step} but never finished in the original instance, so there is no result to reuse; "
            f"rerun from step {number} or earlier")
    inbox += [e for e in later if e.seq in carried and later_outcome.get(e.seq) is e]
    kept = {e.seq for e in before if isinstance(e, (TaskScheduled, ChildScheduled))}
    return RerunPlan(started=started, history=before, inbox=inbox, timers=timers, call=target,
                     reused=[c for c in made if c.seq in kept])


__all__ = ["KEEP_INPUT", "Call", "RerunError", "RerunPlan", "calls", "plan_rerun"]
