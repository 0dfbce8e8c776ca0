"""OpenTelemetry: a workflow run by the in-process runtime with tracing on, its spans caught by the
SDK's in-memory exporter, and the span tree asserted: one trace per instance, a root span, a span per
step, activity attempt (under the step that scheduled it, through the Celery message header), timer and
child. And the engine without OpenTelemetry installed."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RetryPolicy, Settings, WorkflowClient, WorkflowRuntime, WorkflowStatus
from orchestrator.worker import tracing

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def build_runtime(settings: Settings) -> WorkflowRuntime:
    # App "default", like the example apps the test modules import: each runtime's app runs its own tasks.
    wfr = WorkflowRuntime(settings=settings)
    attempts: Counter[str] = Counter()

    @wfr.activity(name="flaky")
    def flaky(ctx: Any, key: str) -> str:
        attempts[key] += 1
        if attempts[key] == 1:
            raise ConnectionError(f"{key}: first attempt fails")
        return key

    @wfr.activity(name="double")
    def double(ctx: Any, n: int) -> int:
        return 2 * n

    @wfr.workflow(name="traced_child")
    def traced_child(ctx: Any, n: int):
        return (yield ctx.call_activity(double, input=n))

    @wfr.workflow(name="traced")
    def traced(ctx: Any, key: str):
        retry = RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=3)
        got = yield ctx.call_activity(flaky, input=key, retry_policy=retry)
        yield ctx.create_timer(timedelta(milliseconds=150))
        child = yield ctx.call_child_workflow(traced_child, input=21, instance_id=f"{ctx.instance_id}-child")
        return [got, child]

    return wfr


def test_a_run_is_one_trace_with_a_span_per_step_attempt_timer_and_child(redis_server: Any) -> None:
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(redis_url=redis_server.url, tracing=True)
    tracing.enable(True, provider=provider)
    wfr = build_runtime(settings)
    wfr.start()
    try:
        client = WorkflowClient(settings=settings)
        client.schedule_new_workflow("traced", input="k", instance_id="tr-1")
        state = client.wait_for_workflow_completion("tr-1", timeout_in_seconds=60)
        assert state.runtime_status == WorkflowStatus.COMPLETED and state.output == ["k", 42]
    finally:
        wfr.shutdown()
        tracing.enable(False)
    spans = exporter.get_finished_spans()
    parent_trace, child_trace = tracing.trace_id("tr-1"), tracing.trace_id("tr-1-child")
    mine = [s for s in spans if s.context.trace_id == parent_trace]
    theirs = [s for s in spans if s.context.trace_id == child_trace]
    assert len(mine) + len(theirs) == len(spans), "every span belongs to one of the two instances' traces"
    by_name: dict[str, list[Any]] = {}
    for span in mine:
        by_name.setdefault(span.name, []).append(span)

    (root,) = by_name["workflow traced"]
    assert root.parent is None and root.context.span_id == tracing.root_span_id("tr-1")
    assert root.attributes["workflow.status"] == "COMPLETED" and root.status.status_code != StatusCode.ERROR
    steps = by_name["step traced"]
    assert len(steps) >= 4 and all(s.parent.span_id == root.context.span_id for s in steps)
    step_ids = {s.context.span_id for s in steps}
    attempts = sorted(by_name["activity flaky"], key=lambda s: s.attributes["activity.attempt"])
    assert [a.attributes["activity.attempt"] for a in attempts] == [1, 2]
    assert all(a.parent.span_id in step_ids for a in attempts), "an attempt is a child of the step that scheduled it"
    assert attempts[0].parent.span_id != attempts[1].parent.span_id  # the retry was scheduled by a later step
    assert attempts[0].status.status_code == StatusCode.ERROR and attempts[1].status.status_code != StatusCode.ERROR
    timers = by_name["timer"]
    assert sorted(t.attributes["timer.purpose"] for t in timers) == ["retry", "user"]
    assert all(t.parent.span_id in step_ids for t in timers)
    user_timer = next(t for t in timers if t.attributes["timer.purpose"] == "user")
    assert (user_timer.end_time - user_timer.start_time) == 150 * 1_000_000
    (child,) = by_name["child traced_child"]
    assert child.parent.span_id == root.context.span_id
    assert [(link.context.trace_id, link.context.span_id) for link in child.links] == [
        (child_trace, tracing.root_span_id("tr-1-child"))]
    assert root.start_time <= min(s.start_time for s in mine) and root.end_time >= max(s.end_time for s in steps)

    child_names = Counter(s.name for s in theirs)
    assert child_names["workflow traced_child"] == 1 and child_names["activity double"] == 1
    assert child_names["step traced_child"] >= 2


def test_the_engine_runs_without_opentelemetry_and_tracing_on_says_what_is_missing(redis_server: Any) -> None:
    program = f"""
import sys
sys.modules["opentelemetry"] = None  # as if not installed: any import of it fails
from orchestrator import Settings, WorkflowClient, WorkflowRuntime
from orchestrator.worker import tracing
wfr = WorkflowRuntime(settings=Settings(redis_url={redis_server.url!r}))

@wfr.activity(name="hi")
def hi(ctx, who):
    return "hi " + who

@wfr.workflow(name="greet")
def greet(ctx, who):
    return (yield ctx.call_activity(hi, input=who))

wfr.start()
client = WorkflowClient(settings=Settings(redis_url={redis_server.url!r}))
client.schedule_new_workflow("greet", input="x", instance_id="plain")
print(client.wait_for_workflow_completion("plain", timeout_in_seconds=30).output)
wfr.shutdown()
try:
    tracing.enable(True)
except tracing.TracingUnavailable as exc:
    print("refused:", exc)
"""
    run = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["hi x", "refused: the setting tracing is on but OpenTelemetry is not installed: "
                                       "pip install 'orchestrator[otel]'"]
