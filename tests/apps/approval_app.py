"""Workflows for the timer and event integration tests (run by real worker pools).

The seed's order-approval workflow itself is tested through its own pool, ``workers.order_approval``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_all, when_any

wfr = WorkflowRuntime()
celery_app = wfr.celery_app


@wfr.activity(name="echo")
def echo(ctx: WorkflowActivityContext, value):
    return value


@wfr.activity(name="sleep_then_echo")
def sleep_then_echo(ctx: WorkflowActivityContext, args: list):
    time.sleep(args[0])
    return args[1]


@wfr.workflow(name="nap")
def nap(ctx: DaprWorkflowContext, seconds: float):
    """One durable timer, then an activity: the timer must fire even if every pool was down."""
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (yield ctx.call_activity(echo, input="woke"))


@wfr.workflow(name="listen_after_timer")
def listen_after_timer(ctx: DaprWorkflowContext, seconds: float):
    """The event may arrive while the timer runs, before the workflow waits for it."""
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (yield ctx.wait_for_external_event("go"))


@wfr.workflow(name="collect")
def collect(ctx: DaprWorkflowContext, n: int):
    """n successive waits for one event name: each takes the next event, in arrival order."""
    items = []
    for _ in range(n):
        items.append((yield ctx.wait_for_external_event("item")))
    return items


@wfr.workflow(name="collect_all")
def collect_all(ctx: DaprWorkflowContext, n: int):
    """n waits for one event name at once (when_all): results in the order the waits were made."""
    return (yield when_all([ctx.wait_for_external_event("item") for _ in range(n)]))


@wfr.workflow(name="many_timers")
def many_timers(ctx: DaprWorkflowContext, spec: dict):
    """``spec["n"]`` concurrent timers spread over 1..``spec["spread"]`` seconds."""
    n, spread = spec["n"], spec["spread"]
    timers = [ctx.create_timer(timedelta(milliseconds=1000 + (i * 7919) % max(1, int(spread * 1000) - 1000)))
              for i in range(n)]
    yield when_all(timers)
    return n


@wfr.workflow(name="mixed_race")
def mixed_race(ctx: DaprWorkflowContext, _):
    """when_any over an event, a timer and a slow activity; the losers finish later and must not
    disturb the rest: a second wait for the same event name then gets the next event."""
    first = ctx.wait_for_external_event("go")
    winner = yield when_any([first, ctx.create_timer(timedelta(seconds=1)),
                             ctx.call_activity(sleep_then_echo, input=[1.5, "slow"])])
    first_won = winner == first
    yield ctx.create_timer(timedelta(seconds=2))  # by now the losing timer and activity have finished
    second = yield ctx.wait_for_external_event("go")
    both = yield when_all([ctx.call_activity(echo, input="a"), ctx.create_timer(timedelta(milliseconds=200))])
    return {"first_won": first_won, "first": first.get_result() if first_won else None,
            "second": second, "after": both[0]}
