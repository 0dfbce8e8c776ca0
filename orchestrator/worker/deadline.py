"""Misbehaving workflow code: a step that never yields, and code that is visibly nondeterministic.

* **Step deadline** (Temporal's deadlock detector). While a step runs workflow code, a watchdog
  thread watches the execution's ``yields`` counter (core/replay.py: each time the code gives
  control back). Standing still for ``step_deadline`` seconds while the thread runs (half that in
  CPU time: a paused or starved process is not stuck), or five times as long blocked in a call,
  means the code loops or blocks between two yields: the watchdog raises ``WorkflowStepDeadlineError``
  inside the step's thread (an asynchronous exception, delivered at the next bytecode), and the instance fails with it,
  naming the workflow and the deadline; the process goes on serving the others. Code stuck in one
  C call (``time.sleep(3600)``, a blocking socket) gets the exception only when the call returns;
  in a prefork child still stuck after three deadlines more, the process exits (Celery starts
  another), and the step's lost count (worker/liveness.py) fails the instance after a few tries.
* **Nondeterminism** that can be seen cheaply: the workflow function's bytecode (and its nested
  functions') referring to ``datetime.now``/``utcnow``/``today``, ``time.time``/``time_ns``/
  ``monotonic``/``perf_counter``, anything of ``random``, ``uuid.uuid1``/``uuid4`` or ``os.urandom``
  through its module globals. Logged once per workflow function as a warning; with the setting
  ``strict_determinism`` the instance fails with ``NonDeterminismError`` naming the call and line.
"""

from __future__ import annotations

import ctypes
import dis
import logging
import os
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core.errors import WorkflowStepDeadlineError

log = logging.getLogger("orchestrator.engine")


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc is not None else None)


def _in_prefork_child() -> bool:
    try:
        from billiard.process import current_process
    except ImportError:  # pragma: no cover - billiard comes with celery
        return False
    return str(current_process().name).startswith("ForkPoolWorker")


def _cpu_clock(thread_id: int) -> Callable[[], float] | None:
    """The CPU time of thread ``thread_id`` (Linux and most Unixes), or None where it cannot be read."""
    try:
        clock = time.pthread_getcpuclockid(thread_id)
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return None
    return lambda: time.clock_gettime(clock)


class _Watch:
    __slots__ = ("execution", "seen", "since", "cpu_since", "fired", "workflow", "cpu")

    def __init__(self, execution: Any, workflow: str, cpu: Callable[[], float] | None) -> None:
        self.execution, self.workflow, self.cpu = execution, workflow, cpu
        self.seen, self.since, self.fired = execution.yields, time.monotonic(), 0
        self.cpu_since = cpu() if cpu is not None else 0.0

    def stuck(self, now: float, seconds: float) -> bool:
        """No yield for ``seconds`` while the thread ran (used at least half of that CPU time), or
        for five times as long whatever it did (blocked in a call). A process the machine paused
        or starved is not stuck: its CPU time stood still too."""
        wall = now - self.since
        if wall < seconds:
            return False
        if self.cpu is None or wall >= 5 * seconds:
            return True
        try:
            return self.cpu() - self.cpu_since >= seconds / 2
        except OSError:  # the thread is gone
            return False

    def progressed(self, now: float) -> None:
        self.since = now
        if self.cpu is not None:
            try:
                self.cpu_since = self.cpu()
            except OSError:
                pass


class StepDeadline:
    """One watchdog thread per process for every step thread's workflow code (``watch``)."""

    def __init__(self, seconds: float, *, exit_stuck: Callable[[], bool] = _in_prefork_child) -> None:
        self.seconds = seconds
        self.exit_stuck = exit_stuck
        self._watches: dict[int, _Watch] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def watch(self, execution: Any, workflow: str) -> Iterator[None]:
        """Run the block (the step's replay and code) under the deadline; raises
        ``WorkflowStepDeadlineError`` with the full story if it fired."""
        if self.seconds <= 0:
            yield
            return
        tid = threading.get_ident()
        watch = _Watch(execution, workflow, _cpu_clock(tid))  # per step: a thread id may be reused
        with self._lock:
            self._watches[tid] = watch
        self._ensure_thread()
        fired = 0
        try:
            yield
        except WorkflowStepDeadlineError:
            fired = 1
        finally:
            with self._lock:
                ended = self._watches.pop(tid, None)
                if ended is not None and ended.fired:
                    fired = ended.fired
                    _set_async_exc(tid, None)  # one raised but not delivered yet must not land elsewhere
        if fired:
            raise WorkflowStepDeadlineError(
                f"workflow {workflow!r} ran {self.seconds:g} s without yielding (setting step_deadline): a loop "
                "that never yields, or blocking work (I/O, sleep, heavy computation) in workflow code, which "
                "belongs in an activity; the step was stopped and the instance failed")

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="orchestrator-step-deadline", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        tick = max(0.02, min(0.25, self.seconds / 8))
        while True:
            time.sleep(tick)
            now = time.monotonic()
            with self._lock:
                for tid, w in self._watches.items():
                    yields = w.execution.yields
                    if yields != w.seen:
                        w.seen = yields
                        w.progressed(now)
                        continue
                    if not w.stuck(now, self.seconds * (1 if not w.fired else 3)):
                        continue
                    if w.fired and self.exit_stuck():
                        log.critical("workflow %r is stuck in one call past its step deadline and cannot be "
                                     "interrupted; this worker process exits (its pool starts another)", w.workflow)
                        os._exit(70)
                    w.fired += 1
                    w.progressed(now)
                    log.error("workflow %r ran %.1f s without yielding; stopping its step", w.workflow,
                              self.seconds)
                    _set_async_exc(tid, WorkflowStepDeadlineError)


# -- nondeterminism -----------------------------------------------------------------------------
_CLOCKS = {"time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"},
           "datetime": {"now", "utcnow", "today"}, "uuid": {"uuid1", "uuid4"}, "os": {"urandom"}}
_FUNCTIONS: dict[Any, str] = {}


def _qualify(obj: Any) -> tuple[str, set[str] | None]:
    """('module', the attributes that are nondeterministic on it) for a global the code refers to."""
    import datetime as dt
    import random

    if obj is random or isinstance(obj, random.Random):
        return "random", None  # everything
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
        if name == "datetime":
            return "datetime", {"datetime", "date"}
        return name, _CLOCKS.get(name, set())
    if obj is dt.datetime or obj is dt.date:
        return obj.__name__, _CLOCKS["datetime"]
    return "", set()


def bad_of(bad: set[str] | None) -> set[str]:
    return bad or set()


def _flag(ins: list[dis.Instruction], i: int, glb: dict[str, Any], direct: list[Any]) -> str | None:
    """What instruction ``i`` (a global's load) and the attribute loads after it call, if nondeterministic."""
    import random

    op = ins[i]
    obj = glb.get(op.argval)
    where = f" (line {op.positions.lineno})" if op.positions and op.positions.lineno else ""
    if obj is None:
        return None
    if any(obj is d for d in direct) or getattr(obj, "__self__", None) is random._inst:  # type: ignore[attr-defined]
        return f"{op.argval}{where}"
    module, bad = _qualify(obj)
    attrs: list[str] = []
    for nxt in ins[i + 1:i + 3]:
        if nxt.opname not in ("LOAD_ATTR", "LOAD_METHOD"):
            break
        attrs.append(str(nxt.argval))
    if not module or not attrs:
        return None
    if isinstance(obj, types.ModuleType) and module == "datetime":  # datetime.datetime.now()
        flagged = attrs[0] in bad_of(bad) and len(attrs) > 1 and attrs[1] in _CLOCKS["datetime"]
    else:
        flagged = bad is None or attrs[0] in bad
    return f"{op.argval}.{'.'.join(attrs)}{where}" if flagged else None


def nondeterministic_calls(fn: Callable[..., Any]) -> list[str]:
    """Calls in ``fn`` (and the functions nested in it) that differ between runs: ``'time.time
    (line 12)'``. Cheap: its bytecode and module globals, read once per function."""
    found: list[str] = []
    glb = getattr(fn, "__globals__", {})
    direct = [getattr(time, n) for n in sorted(_CLOCKS["time"])] + [os.urandom]

    def scan(code: types.CodeType) -> None:
        ins = list(dis.get_instructions(code))
        for i, op in enumerate(ins):
            if op.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(op.argval, str):
                hit = _flag(ins, i, glb, direct)
                if hit is not None:
                    found.append(hit)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                scan(const)

    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        scan(code)
    return found


def check_determinism(fn: Callable[..., Any], workflow: str) -> list[str]:
    """The nondeterministic calls of ``fn``, logged as a warning the first time it is seen."""
    try:
        known = _FUNCTIONS.get(fn)
    except TypeError:  # unhashable
        return []
    if known is None:
        try:
            calls = nondeterministic_calls(fn)
        except Exception:  # noqa: BLE001 - a best-effort lint: it must never fail a workflow
            log.debug("could not check workflow %r for nondeterministic calls", workflow, exc_info=True)
            calls = []
        _FUNCTIONS[fn] = ", ".join(calls)
        if calls:
            log.warning("workflow %r calls %s: workflow code must be deterministic (use ctx.current_utc_datetime, "
                        "or an activity); with strict_determinism on, its instances fail", workflow,
                        ", ".join(calls), extra={"workflow": workflow})
        return calls
    return known.split(", ") if known else []


__all__ = ["StepDeadline", "check_determinism", "nondeterministic_calls"]
