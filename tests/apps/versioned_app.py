"""One app, several deploys: ``VERSIONED_APP_CODE`` picks which code this pool runs.

* ``1``: the original code. ``order`` reserves, waits for ``pay``, ships; ``order_flow`` is
  registered as version "1" (quote, wait for ``go``, book).
* ``2``: ``order`` guards a new fraud check with ``ctx.is_patched("fraud-check")``; ``order_flow``
  gains version "2" (a different sequence of calls) next to version "1".
* ``2-unguarded``: the same fraud check without the guard (what a careless deploy looks like).

``five_steps`` (for reruns) calls activity ``work`` five times; code ``1`` has a bug that makes step
3 fail, which deploy ``2`` fixes.

Every activity run is counted in Redis (``versioned:runs`` hash, by activity name), so tests can
see which code paths ran, in which pool.
"""

from __future__ import annotations

import os

import redis

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime

CODE = os.environ.get("VERSIONED_APP_CODE", "1")
_redis = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))


def _ran(name: str, value: object) -> dict:
    _redis.hincrby("versioned:runs", name, 1)
    return {"step": name, "input": value}


def reserve(ctx: WorkflowActivityContext, order: dict) -> dict:
    return _ran("reserve", order)


def check_fraud(ctx: WorkflowActivityContext, order: dict) -> dict:
    return _ran("check_fraud", order)


def ship(ctx: WorkflowActivityContext, order: dict) -> dict:
    return _ran("ship", order)


def quote(ctx: WorkflowActivityContext, order: dict) -> dict:
    return _ran("quote", order)


def book(ctx: WorkflowActivityContext, order: dict) -> dict:
    return _ran("book", order)


def book_express(ctx: WorkflowActivityContext, order: dict) -> dict:
    return _ran("book_express", order)


def work(ctx: WorkflowActivityContext, item: dict) -> int:
    _ran(f"work{item['n']}", item)
    if CODE == "1" and item["n"] == 3:
        raise KeyError("step 3 has a bug in deploy 1")
    return item["base"] + item["n"]


def five_steps(ctx: DaprWorkflowContext, inp: dict):
    results = []
    for n in range(1, 6):
        results.append((yield ctx.call_activity("work", input={"n": n, "base": inp["base"]})))
    return results


def order_v1(ctx: DaprWorkflowContext, order: dict):
    steps = [(yield ctx.call_activity("reserve", input=order))["step"]]
    payment = yield ctx.wait_for_external_event("pay")
    steps.append((yield ctx.call_activity("ship", input=payment))["step"])
    return steps


def order_v2(ctx: DaprWorkflowContext, order: dict):
    steps = []
    if ctx.is_patched("fraud-check"):
        steps.append((yield ctx.call_activity("check_fraud", input=order))["step"])
    steps.append((yield ctx.call_activity("reserve", input=order))["step"])
    payment = yield ctx.wait_for_external_event("pay")
    steps.append((yield ctx.call_activity("ship", input=payment))["step"])
    return steps


def order_v2_unguarded(ctx: DaprWorkflowContext, order: dict):
    steps = [(yield ctx.call_activity("check_fraud", input=order))["step"]]
    steps.append((yield ctx.call_activity("reserve", input=order))["step"])
    payment = yield ctx.wait_for_external_event("pay")
    steps.append((yield ctx.call_activity("ship", input=payment))["step"])
    return steps


def order_flow_v1(ctx: DaprWorkflowContext, order: dict):
    first = yield ctx.call_activity("quote", input=order)
    yield ctx.wait_for_external_event("go")
    second = yield ctx.call_activity("book", input=order)
    return {"version": "1", "steps": [first["step"], second["step"]]}


def order_flow_v2(ctx: DaprWorkflowContext, order: dict):
    yield ctx.wait_for_external_event("go")
    booked = yield ctx.call_activity("book_express", input=order)
    return {"version": "2", "steps": [booked["step"]]}


def build(code: str) -> WorkflowRuntime:
    """The runtime a deploy of ``code`` registers (tests replay histories against several)."""
    runtime = WorkflowRuntime()
    for fn in (reserve, check_fraud, ship, quote, book, book_express, work):
        runtime.register_activity(fn, name=fn.__name__)
    runtime.register_workflow(five_steps, name="five_steps")
    order = {"1": order_v1, "2": order_v2, "2-unguarded": order_v2_unguarded}[code]
    runtime.register_workflow(order, name="order")
    runtime.register_workflow(order_flow_v1, name="order_flow", version="1")
    if code != "1":
        runtime.register_workflow(order_flow_v2, name="order_flow", version="2")
    return runtime


wfr = build(CODE)
celery_app = wfr.celery_app
