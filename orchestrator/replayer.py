"""Replay exported histories against the current code, offline: no Redis, no Celery, no clock.

Before deploying a change to a workflow, replay the histories of instances recorded in production
(``orchestrator history ID --export FILE`` or ``client.export_history(id)``) against the new code. A
change that would break a running instance shows up here, with the step, what history recorded and
what the new code asked for, instead of as ``NonDeterminismError`` after the deploy::

    from orchestrator.testing import Replayer, assert_replays

    report = Replayer(wfr).replay_all("tests/histories")   # every *.json below the directory
    print(report)                                          # one line per history that fails
    assert_replays("tests/histories", workflows=wfr)       # the same, as a pytest assertion

Each history is replayed with the pure replay core, exactly as a worker does after a crash, using
the registered function of the version recorded in the history. A history *passes* when the code
asks for every call history recorded, in order, and, when history says how the workflow ended
(completed or failed), ends the same way. Only the first divergence of a history is reported: after
it, the code is on a path history never saw. Activities never run; outputs are not compared (new
code may compute a different result from the same calls, which is not a replay problem).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.errors import NonDeterminismError
from .core.history import ExecutionCompleted, HistoryFormatError, StepStarted
from .core.registry import Registry
from .core.replay import WorkflowExecution
from .history_export import ExportedHistory, load_document, read_file

# A WorkflowRuntime (anything with a ``registry``), a Registry, {name: function}, a function, or a list of these.
Workflows = Registry | Mapping[str, Callable[..., Any]] | Callable[..., Any] | Iterable[Any] | Any
HistorySource = ExportedHistory | Mapping[str, Any] | str | Path


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of replaying one history. ``problem`` is "" when it passed, else
    ``nondeterminism``, ``outcome`` (ended differently), ``not_registered`` or ``error``."""

    source: str
    instance_id: str
    workflow: str
    version: str | None
    problem: str = ""
    message: str = ""
    step: int | None = None  # the orchestration step (1-based) where code and history parted
    event_index: int | None = None  # the history event (1-based) where they parted
    recorded: str | None = None
    requested: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problem

    def describe(self) -> str:
        label = f"{self.workflow!r}" + (f" version {self.version!r}" if self.version else "")
        head = f"{self.source or self.instance_id}: workflow {label} (instance {self.instance_id!r})"
        return f"{head}: ok" if self.ok else f"{head}: {self.problem}: {self.message}"


@dataclass
class ReplayReport:
    results: list[ReplayResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[ReplayResult]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.failures:
            counts[r.problem] = counts.get(r.problem, 0) + 1
        detail = ", ".join(f"{n} {problem.replace('_', ' ')}" for problem, n in sorted(counts.items()))
        passed = len(self.results) - len(self.failures)
        noun = "history" if len(self.results) == 1 else "histories"
        return f"replayed {len(self.results)} {noun} against the current code: {passed} ok" + \
            (f", {detail}" if detail else "")

    def __str__(self) -> str:
        return "\n".join([self.summary(), *("FAIL " + r.describe() for r in self.failures)])


def _registry(workflows: Workflows) -> Registry:
    if isinstance(workflows, Registry):
        return workflows
    held = getattr(workflows, "registry", None)
    if isinstance(held, Registry):
        return held
    registry = Registry()
    if isinstance(workflows, Mapping):
        for name, fn in workflows.items():
            registry.add_workflow(fn, name)
        return registry
    items = [workflows] if callable(workflows) else list(workflows)
    for item in items:
        if callable(item) and not isinstance(item, type):
            registry.add_workflow(item)
            continue
        source = _registry(item)
        for name, versions in source.workflow_versions.items():
            for version, fn in versions.items():
                registry.add_workflow(fn, name, version or None)
    return registry


class Replayer:
    """Replays exported histories against the given workflow code and reports every divergence."""

    def __init__(self, workflows: Workflows) -> None:
        try:
            self.registry = _registry(workflows)
        except TypeError as exc:
            raise TypeError("Replayer takes a WorkflowRuntime, a Registry, {name: function}, a workflow function "
                            f"or a list of these; got {type(workflows).__name__}") from exc
        if not self.registry.workflows:
            raise ValueError("Replayer was given no workflows to replay against")

    def replay(self, history: HistorySource) -> ReplayResult:
        """Replay one history: an export document (dict), a file path, or a decoded export."""
        try:
            exported = _load(history)
        except (HistoryFormatError, OSError) as exc:
            return ReplayResult(str(history) if isinstance(history, (str, Path)) else "", "?", "?", None,
                                problem="error", message=str(exc))
        base: dict[str, Any] = dict(source=exported.source, instance_id=exported.instance_id,
                                    workflow=exported.name, version=exported.version)
        fn = self.registry.workflow(exported.name, exported.version)
        if fn is None:
            wanted = f"version {exported.version!r}" if exported.version else "unversioned"
            return ReplayResult(**base, problem="not_registered", message=(
                f"workflow {exported.name!r} ({wanted}) is not registered in the code under test "
                f"(registered versions: {self.registry.describe_versions(exported.name)})"))
        execution = WorkflowExecution(fn, exported.instance_id, exported.generation,
                                      interceptors=self.registry.interceptors)  # a runtime's, as its pools ran
        try:
            execution.catch_up(exported.events)
        except NonDeterminismError as err:
            where = f"step {err.step} (history event #{err.position})" if err.step else f"history event #{err.position}"
            return ReplayResult(**base, problem="nondeterminism", step=err.step, event_index=err.position,
                                recorded=err.recorded, requested=err.requested,
                                message=f"at {where} history recorded {err.recorded}, but the code {err.requested}")
        except Exception as exc:  # noqa: BLE001 - a report, not a crash, for one bad history
            return ReplayResult(**base, problem="error", message=f"{type(exc).__name__}: {exc}")
        return self._compare_outcome(base, exported, execution)

    @staticmethod
    def _compare_outcome(base: dict[str, Any], exported: ExportedHistory, execution: WorkflowExecution) -> ReplayResult:
        recorded = next((e for e in reversed(exported.events) if isinstance(e, ExecutionCompleted)), None)
        if recorded is None:
            return ReplayResult(**base)
        index = exported.events.index(recorded) + 1
        step = sum(isinstance(e, StepStarted) for e in exported.events[:index]) or None
        done = execution.completion
        got = getattr(done, "status", None)
        if got == recorded.status:
            return ReplayResult(**base)
        what = f"the workflow {recorded.status}" + (
            f" ({recorded.failure.error_type}: {recorded.failure.message})" if recorded.failure else "")
        if done is None:
            code = "did not finish (it is still waiting)"
        elif getattr(done, "failure", None) is not None:
            code = f"{got} ({done.failure.error_type}: {done.failure.message})"  # type: ignore[union-attr]
        else:
            code = str(got or type(done).__name__)
        return ReplayResult(**base, problem="outcome", step=step, event_index=index, recorded=what, requested=code,
                            message=f"at step {step} (history event #{index}) history recorded {what}, "
                                    f"but the code {'' if done is None else 'ended '}{code}")

    def replay_all(self, sources: HistorySource | Iterable[HistorySource]) -> ReplayReport:
        """Replay every history: a directory (each ``*.json`` below it), a file, a document, or a list."""
        items: list[HistorySource] = []
        for source in ([sources] if isinstance(sources, (str, Path, Mapping, ExportedHistory)) else sources):
            if isinstance(source, (str, Path)) and Path(source).is_dir():
                found = sorted(Path(source).rglob("*.json"))
                if not found:
                    raise FileNotFoundError(f"no exported histories (*.json) under {source}")
                items.extend(found)
            else:
                items.append(source)
        return ReplayReport([self.replay(item) for item in items])


def _load(history: HistorySource) -> ExportedHistory:
    if isinstance(history, ExportedHistory):
        return history
    if isinstance(history, (str, Path)):
        return read_file(history)
    if isinstance(history, Mapping):
        return load_document(json.loads(json.dumps(history)))  # exactly what a file would give
    raise TypeError(f"expected an exported history (dict), a path or an ExportedHistory, got {type(history).__name__}")


def assert_replays(histories: HistorySource | Iterable[HistorySource], workflows: Workflows) -> ReplayReport:
    """A pytest assertion: every history replays against ``workflows`` (a runtime, registry, ...).

    Fails with the report (one line per divergent history, with step and calls) otherwise."""
    report = Replayer(workflows).replay_all(histories)
    if not report.results:
        raise AssertionError("no histories to replay")
    if not report.ok:
        raise AssertionError(str(report))
    return report


__all__ = ["Replayer", "ReplayReport", "ReplayResult", "assert_replays"]
