"""OpenTelemetry traces of workflow instances: optional (the ``otel`` extra), off by default.

Turn it on with the setting ``tracing`` (``ORCH_TRACING=1``) in the processes that run steps and
activities (worker pools, ``wfr.start()``); spans go to the global ``TracerProvider`` the process
configured (``opentelemetry-instrument``, your own setup, or :func:`configure_from_env`, which
``orchestrator worker`` calls: an OTLP exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set).

**One trace per instance.** Its trace id and its root span's id are derived from the instance id
(sha256), so every process, the step that schedules an activity, the worker that runs it, names the
same trace without storing or passing anything but one header. Spans are emitted after the fact with
their real start and end times, so nothing stays open across processes or crashes:

* ``workflow <name>``: the root, from the instance's creation to its final status;
* ``step <name>``: each committed orchestration step, a child of the root (its id is derived from
  the instance, generation and history version);
* ``activity <name>``: each attempt, a child of the step that scheduled it, whose span context travels
  in the Celery message's ``traceparent`` header (W3C trace context);
* ``timer``: each durable timer, from its creation to its fire time, a child of the step that set it;
* ``child <name>``: in the parent's trace, the child instance from its creation to its end, linked to
  the child's own trace.

A continue-as-new stays in the instance's trace; an id reused with ``reuse_id_policy="replace"``
continues the same trace (ids are the instance's, whatever run). With ``opentelemetry-sdk`` the ids
are exactly these; another SDK gets the same tree except the root span, which then has its own id.
Nothing here imports OpenTelemetry unless tracing is on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

from ..core.errors import FailureDetails
from ..core.history import TimerCreated
from ..core.vocabulary import TERMINAL, Status
from ..store.records import ActivityRecord, activity_task_key

log = logging.getLogger("orchestrator.tracing")
TRACEPARENT = "traceparent"

_state: dict[str, Any] = {"on": False, "tracer": None, "provider": None, "given": None}
_local = threading.local()  # step: the step this thread is deciding; parents: instance -> parent span id


class TracingUnavailable(RuntimeError):
    """``tracing`` is on but OpenTelemetry is not installed (``pip install 'orchestrator[otel]'``)."""


def enable(on: bool = True, provider: Any = None) -> None:
    """Turn span emission on (the setting ``tracing``) or off; ``provider``: a ``TracerProvider`` to
    use instead of the global one (tests, embedding). Raises ``TracingUnavailable`` when on without
    opentelemetry-api installed."""
    if provider is not None:
        _state["given"] = provider
    if on:
        try:
            import opentelemetry.trace  # noqa: F401
        except ImportError as exc:
            raise TracingUnavailable("the setting tracing is on but OpenTelemetry is not installed: "
                                     "pip install 'orchestrator[otel]'") from exc
    _state["on"] = on


def enabled() -> bool:
    return bool(_state["on"])


def configure_from_env() -> bool:
    """Give this process an SDK ``TracerProvider`` exporting over OTLP/HTTP when none is set and
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is; True if it did."""
    import os

    from opentelemetry import trace

    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider":
        return False  # the process set its own
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable("exporting traces needs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http:"
                                 " pip install 'orchestrator[otel]'") from exc
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                      "orchestrator")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


# -- ids --------------------------------------------------------------------------------------------
def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, ("orchestrator", *parts))).encode()).digest()


def trace_id(instance_id: str) -> int:
    return int.from_bytes(_digest("trace", instance_id)[:16], "big") or 1


def root_span_id(instance_id: str) -> int:
    return int.from_bytes(_digest("root", instance_id)[:8], "big") or 1


def step_span_id(instance_id: str, generation: int, version: int) -> int:
    """The span of the step computed from history ``version`` of ``generation``."""
    return int.from_bytes(_digest("step", instance_id, generation, version)[:8], "big") or 1


def traceparent(instance_id: str, span_id: int) -> str:
    return f"00-{trace_id(instance_id):032x}-{span_id:016x}-01"


def parse_traceparent(value: Any) -> tuple[int, int] | None:
    """(trace id, span id) of a W3C ``traceparent`` header, None when absent or malformed."""
    if not isinstance(value, str):
        return None
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        return int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        return None


# -- the hooks the worker calls ---------------------------------------------------------------------
def begin_step(meta: Any) -> None:
    """The step of ``meta`` (its loaded version) is being decided: messages it builds name its span."""
    if _state["on"]:
        _local.step = (meta.instance_id, meta.generation, meta.version)


def message_headers(instance_id: str) -> dict[str, str]:
    """Headers for a message of ``instance_id`` built now: the span context of the step this thread
    last decided for it (the messages a step pushes, or publishes right after its commit)."""
    step = getattr(_local, "step", None) if _state["on"] else None
    if step is None or step[0] != instance_id:
        return {}
    return {TRACEPARENT: traceparent(step[0], step_span_id(*step))}


def end_step(meta: Any, commit: Any, started_ms: int, committed: bool) -> None:
    """The step was committed (or not: then nothing is emitted). Emits its span, its timers' spans
    and, when the instance reached a final status, the root span (and the child span in the parent's trace)."""
    if not _state["on"]:
        return
    if not committed:
        _local.step = None
        return
    step_id = step_span_id(meta.instance_id, meta.generation, meta.version)
    parents = getattr(_local, "parents", None)
    if parents is None:
        parents = _local.parents = {}
    parents[meta.instance_id] = step_id  # an activity run eagerly after this step is its child
    try:
        _emit_step(meta, commit, started_ms)
    except Exception:  # noqa: BLE001 - tracing must never break a step
        log.exception("emitting the spans of a step failed")


def from_message(request: Any, records: Iterable[Mapping[str, Any]]) -> None:
    """A Celery message starts running: its attempts' parent is the step named in its header."""
    if not _state["on"]:
        return
    getter = getattr(request, "get", None)
    parsed = parse_traceparent(getter(TRACEPARENT) if getter is not None else None)
    parents: dict[str, int] = {}
    if parsed is not None:
        parents = {rec["id"]: parsed[1] for rec in records if trace_id(rec["id"]) == parsed[0]}
    _local.parents = parents


def activity_attempt(rec: Mapping[str, Any], started_ns: int, failure: FailureDetails | None) -> None:
    """An attempt ran from ``started_ns`` until now: its span, under the step that scheduled it."""
    if not _state["on"]:
        return
    try:
        instance_id = rec["id"]
        parent = (getattr(_local, "parents", None) or {}).get(instance_id, root_span_id(instance_id))
        attributes = {"workflow.instance_id": instance_id, "workflow.name": rec.get("wf") or "",
                      "activity.name": rec["name"], "activity.attempt": int(rec.get("attempt", 1)),
                      "activity.task_id": activity_task_key(cast(ActivityRecord, rec)),
                      "orchestrator.app_id": rec.get("app") or ""}
        _span(f"activity {rec['name']}", instance_id, parent, started_ns, time.time_ns(), attributes,
              error=failure, kind="CONSUMER")
    except Exception:  # noqa: BLE001
        log.exception("emitting an activity span failed")


# -- emitting ---------------------------------------------------------------------------------------
def _emit_step(meta: Any, commit: Any, started_ms: int) -> None:
    instance_id, now_ns = meta.instance_id, time.time_ns()
    step_id = step_span_id(instance_id, meta.generation, meta.version)
    attributes = {"workflow.instance_id": instance_id, "workflow.name": meta.name,
                  "workflow.generation": meta.generation, "workflow.history_version": meta.version,
                  "workflow.status": commit.status, "step.events": len(commit.events)}
    failure = _failure(commit) if commit.status == Status.FAILED else None
    _span(f"step {meta.name}", instance_id, root_span_id(instance_id), started_ms * 1_000_000, now_ns,
          attributes, span_id=step_id, error=failure)
    for event in commit.events:
        if isinstance(event, TimerCreated):
            _span("timer", instance_id, step_id, event.ts * 1_000_000, max(event.fire_at, event.ts) * 1_000_000,
                  {"workflow.instance_id": instance_id, "timer.seq": event.seq,
                   "timer.purpose": event.purpose or "user", "timer.fire_at_ms": event.fire_at})
    if commit.status in TERMINAL and meta.status not in TERMINAL:
        root = {"workflow.instance_id": instance_id, "workflow.name": meta.name, "workflow.status": commit.status,
                "orchestrator.app_id": meta.app}
        _span(f"workflow {meta.name}", instance_id, None, meta.created * 1_000_000, now_ns, root,
              span_id=root_span_id(instance_id), error=failure, kind="SERVER")
        if meta.parent:
            _span(f"child {meta.name}", meta.parent, root_span_id(meta.parent), meta.created * 1_000_000, now_ns,
                  {**root, "workflow.parent_instance_id": meta.parent}, error=failure,
                  link=(trace_id(instance_id), root_span_id(instance_id)))


def _failure(commit: Any) -> FailureDetails | None:
    for event in reversed(commit.events):
        failure = getattr(event, "failure", None)
        if isinstance(failure, FailureDetails):
            return failure
    return None


def _tracer() -> Any:
    from opentelemetry import trace

    provider = _state["given"] or trace.get_tracer_provider()
    if _state["provider"] is not provider or _state["tracer"] is None:
        tracer = provider.get_tracer("orchestrator")
        inner = getattr(tracer, "id_generator", None)
        if inner is not None:  # the SDK's tracer: let it take the ids this module derives
            setattr(tracer, "id_generator", _PresetIds(inner))  # noqa: B010 - an SDK attribute the API does not type
        _state["provider"], _state["tracer"] = provider, tracer
    return _state["tracer"]


class _PresetIds:
    """The SDK tracer's id generator, giving the derived span (and root trace) ids when preset."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.preset = threading.local()

    def generate_span_id(self) -> int:
        span_id = getattr(self.preset, "span_id", None)
        return int(span_id) if span_id else int(self.inner.generate_span_id())

    def generate_trace_id(self) -> int:
        trace = getattr(self.preset, "trace_id", None)
        return int(trace) if trace else int(self.inner.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        return False


def _span(name: str, instance_id: str, parent_span: int | None, start_ns: int, end_ns: int,
          attributes: dict[str, Any], *, span_id: int | None = None, error: FailureDetails | None = None,
          kind: str = "INTERNAL", link: tuple[int, int] | None = None) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    tracer = _tracer()
    context = None
    if parent_span is not None:
        parent = SpanContext(trace_id(instance_id), parent_span, is_remote=True, trace_flags=TraceFlags(1))
        context = trace.set_span_in_context(NonRecordingSpan(parent))
    links = [Link(SpanContext(link[0], link[1], is_remote=True, trace_flags=TraceFlags(1)))] if link else []
    ids = getattr(getattr(tracer, "id_generator", None), "preset", None)
    if ids is not None:
        ids.span_id, ids.trace_id = span_id, trace_id(instance_id) if parent_span is None else None
    try:
        span = tracer.start_span(name, context=context, kind=getattr(SpanKind, kind), attributes=attributes,
                                 links=links, start_time=start_ns)
    finally:
        if ids is not None:
            ids.span_id = ids.trace_id = None
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, f"{error.error_type}: {error.message}"))
        span.set_attribute("error.type", error.error_type)
    span.end(end_time=max(end_ns, start_ns))


__all__ = ["TracingUnavailable", "activity_attempt", "begin_step", "configure_from_env", "enable", "enabled",
           "end_step", "from_message", "message_headers", "parse_traceparent", "root_span_id", "step_span_id",
           "trace_id", "traceparent"]
