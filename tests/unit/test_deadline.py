"""The step deadline and the nondeterminism check (worker/deadline.py), without Redis or pools."""

from __future__ import annotations

import datetime
import random
import time
from datetime import datetime as DT
from types import SimpleNamespace

import pytest

from orchestrator.core.errors import WorkflowStepDeadlineError
from orchestrator.worker.deadline import StepDeadline, check_determinism, nondeterministic_calls

SETTINGS = ["a", "list"]  # an unhashable global the check must step over


def clocky(ctx):
    stamp = datetime.datetime.now()
    lucky = random.random()
    later = DT.utcnow()
    both = time.time(), SETTINGS[0]
    yield (stamp, lucky, later, both)


def clean(ctx):
    wait = datetime.timedelta(seconds=1)
    yield ctx.create_timer(wait), SETTINGS


def test_clock_and_random_reads_are_found_with_their_lines_and_nothing_else():
    found = nondeterministic_calls(clocky)
    assert [f.split(" (line")[0] for f in found] == ["datetime.datetime.now", "random.random", "DT.utcnow",
                                                      "time.time"]
    assert all("(line " in f for f in found)
    assert nondeterministic_calls(clean) == [] and check_determinism(clean, "clean") == []


def test_code_that_stops_yielding_gets_the_deadline_error_and_progress_resets_it():
    deadline = StepDeadline(0.3, exit_stuck=lambda: False)
    execution = SimpleNamespace(yields=0)
    with pytest.raises(WorkflowStepDeadlineError, match="ran 0.3 s without yielding"):
        with deadline.watch(execution, "spin"):
            while True:
                pass
    began = time.monotonic()
    with deadline.watch(execution, "busy"):  # yields often: never stopped
        while time.monotonic() - began < 1.0:
            execution.yields += 1
