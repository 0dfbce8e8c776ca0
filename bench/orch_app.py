"""Our engine's benchmark workflows, served by a real pool: ``orchestrator worker bench.orch_app``.

Activities do nothing but return; ``stamp`` returns the wall time it ran at, so the client can measure
the gap between consecutive sequential steps without adding any Redis traffic to the step.
"""

from __future__ import annotations

import time

from orchestrator import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, when_all

wfr = WorkflowRuntime()


@wfr.activity(name="noop")
def noop(ctx: WorkflowActivityContext) -> None:
    return None


@wfr.activity(name="stamp")
def stamp(ctx: WorkflowActivityContext) -> float:
    return time.time()


@wfr.workflow(name="bench_chain")
def bench_chain(ctx: DaprWorkflowContext, n: int):
    """Workload (a): ``n`` sequential no-op activities."""
    for _ in range(n):
        yield ctx.call_activity(noop)
    return n


@wfr.workflow(name="bench_stamps")
def bench_stamps(ctx: DaprWorkflowContext, n: int):
    """Workload (b): ``n`` sequential activities, returning when each ran."""
    stamps = []
    for _ in range(n):
        stamps.append((yield ctx.call_activity(stamp)))
    return stamps


@wfr.workflow(name="bench_fan")
def bench_fan(ctx: DaprWorkflowContext, n: int):
    """Workload (c): fan-out of ``n`` activities, fan-in of their results."""
    results = yield when_all([ctx.call_activity(noop) for _ in range(n)])
    return len(results)


@wfr.activity(name="noop_limited", concurrency=2)
def noop_limited(ctx: WorkflowActivityContext) -> None:
    """``noop`` behind a concurrency limit of 2 across pools (docs/flow-control.md): the pool has 2
    processes, so the limit never holds work back and what it costs is the gate itself."""
    return None


@wfr.workflow(name="bench_fan_limited")
def bench_fan_limited(ctx: DaprWorkflowContext, n: int):
    """Workload (g): workload (c)'s fan-out, of a concurrency-limited activity."""
    results = yield when_all([ctx.call_activity(noop_limited) for _ in range(n)])
    return len(results)


@wfr.workflow(name="bench_long_history")
def bench_long_history(ctx: DaprWorkflowContext, spec: dict):
    """Workload (d): grow the history with a fan-out of ``fill`` activities (2 events each), then
    ``k`` sequential timed steps whose cost shows how a step scales with history length."""
    if spec["fill"]:
        yield when_all([ctx.call_activity(noop) for _ in range(spec["fill"])])
    stamps = []
    for _ in range(spec["k"]):
        stamps.append((yield ctx.call_activity(stamp)))
    return stamps


@wfr.workflow(name="bench_empty")
def bench_empty(ctx: DaprWorkflowContext, value: int):
    """Workload (e): a workflow that completes at once; only its start is measured."""
    return value
