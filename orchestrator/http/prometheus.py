"""Prometheus exposition of the engine's metrics (``GET /metrics``): the recorded families of
``orchestrator.metrics``, the backlog gauges, instance counts and queue lengths, rendered with
prometheus_client (extra ``http``). Recording needs none of this (see ``orchestrator.metrics``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..core.errors import OrchestratorError
from ..metrics import RECORDED, Metric, Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsUnavailable(OrchestratorError, RuntimeError):
    """prometheus_client is not installed (install the ``http`` extra)."""


def render(recorded: Callable[[], dict[str, dict[tuple[str, ...], Sample]]], gauges: Callable[[], dict[str, float]],
           counts: Callable[[], dict[str, Any]] | None = None,
           queues: Callable[[], dict[str, int]] | None = None) -> bytes:
    """Prometheus text exposition of the recorded metrics and the live gauges, read at scrape time.

    ``recorded`` returns ``metrics.read_recorded``'s answer and ``gauges`` ``metrics.live_gauges``'
    (the client's ``recorded_metrics`` and ``backlog``); ``counts`` returns ``{"by_name": {workflow:
    {"by_status": {status: n}}}}`` (the client's ``count_workflows``: instances currently in each status);
    ``queues`` returns Celery queue lengths. Either may be omitted."""
    try:
        import prometheus_client.core as families
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MetricsUnavailable("prometheus_client is not installed: pip install 'orchestrator[http]'") from exc

    class _Collector:
        def collect(self) -> Iterator[Any]:
            yield from _recorded_families(families, recorded())
            yield from _gauge_families(families, gauges())
            if counts is not None:
                yield _instances_family(families, counts())
            if queues is not None:
                yield _queues_family(families, queues())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())  # type: ignore[arg-type]
    return generate_latest(registry)


def _recorded_families(families: Any, recorded: dict[str, dict[tuple[str, ...], Sample]]) -> Iterator[Any]:
    for metric in RECORDED:
        samples = recorded[metric.name].values()
        if metric.kind == "counter":
            family: Any = families.CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
            for s in samples:
                family.add_metric(list(s.labels), s.value)
        else:
            family = families.HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
            for s in samples:
                family.add_metric(list(s.labels), _cumulative(metric, s), s.sum)
        yield family


def _cumulative(metric: Metric, sample: Sample) -> list[tuple[str, float]]:
    """A histogram sample's per-bucket counts as Prometheus's cumulative ``le`` buckets."""
    per_bucket, running, cumulative = sample.buckets or [0.0] * (len(metric.buckets) + 1), 0.0, []
    for bound, n in zip([*map(_bound, metric.buckets), "+Inf"], per_bucket):
        running += n
        cumulative.append((bound, running))
    return cumulative


_GAUGES = (
    ("orchestrator_ready_instances", "ready", "Instances with delivered events waiting for a step."),
    ("orchestrator_outbox_instances", "outbox", "Instances with committed dispatches not yet published."),
    ("orchestrator_timers_pending", "timers", "Durable timers (and scheduled starts) not yet fired."),
    ("orchestrator_timers_due", "timers_due", "Timers whose fire time has passed but have not fired."),
    ("orchestrator_timer_lag_seconds", "timer_lag", "Age of the oldest due but unfired timer."),
)


def _gauge_families(families: Any, gauges: dict[str, float]) -> Iterator[Any]:
    for name, key, text in _GAUGES:
        yield families.GaugeMetricFamily(name, text, value=gauges[key])


def _instances_family(families: Any, counts: dict[str, Any]) -> Any:
    family = families.GaugeMetricFamily("orchestrator_instances", "Instances currently in each status.",
                                        labels=("workflow", "status"))
    for workflow, per_name in sorted(counts.get("by_name", {}).items()):
        for status, n in sorted(per_name.get("by_status", {}).items()):
            family.add_metric([workflow, status], n)
    return family


def _queues_family(families: Any, queues: dict[str, int]) -> Any:
    family = families.GaugeMetricFamily("orchestrator_queue_messages", "Messages waiting in each Celery queue.",
                                        labels=("queue",))
    for queue, n in sorted(queues.items()):
        family.add_metric([queue], n)
    return family


def _bound(value: float) -> str:
    return repr(float(value))


__all__ = ["CONTENT_TYPE", "MetricsUnavailable", "render"]
