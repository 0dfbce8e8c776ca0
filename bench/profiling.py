"""Optional py-spy profiles of our pool while a workload runs (``python -m bench.run --profile DIR``).

py-spy samples every process of the pool (``--subprocesses``) and writes collapsed stacks (``raw``
format, one ``frame;frame;... count`` per line); ``summarize`` turns them into the share of samples
spent in each engine function (inclusive) and the hottest leaf functions (self). Sampling pauses the
processes briefly, so profiled figures are a little slower than unprofiled ones: profile in a
separate run from the one whose numbers you report.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .common import Workers

# Engine functions whose inclusive share answers "where does a step's time go" (matched on the last
# component of py-spy's qualified name, e.g. ``Engine.run_step``).
FOCUS = (
    "run_activity", "run_activities", "activities_started", "call_activity", "execute", "deliver_attempt", "deliver",
    "deliver_and_load", "deliver_many", "wake", "run_step",
    "load", "_decide", "replay", "unpack_events", "unpack_event", "from_hash", "commit", "pack_events",
    "publish_outbox", "_publish", "send_activity", "send_step", "send_task", "ack_outbox", "record_step",
    "record_activity", "info", "release",
)
# Leaves where a thread waits rather than works (sleeping daemon threads, the consumer's poll).
IDLE = ("sleep", "_flush_loop", "wait", "poll", "_recv", "select", "BackgroundDuties.run")


class Profiler:
    def __init__(self, out_dir: Path, workers: Workers) -> None:
        self.out_dir = out_dir
        self.workers = workers
        self.exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))

    @staticmethod
    @contextlib.contextmanager
    def maybe(profiler: Profiler | None, label: str) -> Iterator[None]:
        if profiler is None:
            yield
            return
        with profiler.record(label):
            yield

    @contextlib.contextmanager
    def record(self, label: str) -> Iterator[None]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        raw = self.out_dir / f"{label}.txt"
        parent = self.workers.procs[0].pid
        spy = subprocess.Popen([self.exe, "record", "--pid", str(parent), "--subprocesses", "--format", "raw",
                                "--rate", "200", "-o", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # let py-spy attach to every process before the workload starts
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                _, err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                err = b""
            if raw.exists():
                (self.out_dir / f"{label}.summary.txt").write_text(summarize(raw))
            else:
                (self.out_dir / f"{label}.summary.txt").write_text(
                    f"py-spy wrote nothing: {err.decode(errors='replace')}"
                )


def _function(frame: str) -> tuple[str, str]:
    """``Engine.run_step (orchestrator/worker/engine.py:123)`` -> (``Engine.run_step``, the path)."""
    name, _, rest = frame.partition(" (")
    path = rest.rstrip(")").rsplit(":", 1)[0]
    return name.strip(), path


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def summarize(raw: Path, top: int = 20) -> str:
    """Samples split by role: ``task`` (inside Celery's trace_task in a pool process: running an
    activity and the step it wakes inline), ``idle`` (waiting threads), ``other`` (the consumer,
    publishing, background duties)."""
    roles: Counter[str] = Counter()
    task_incl: Counter[str] = Counter()
    task_self: Counter[str] = Counter()
    other_self: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        leaf_name, leaf_path = frames[-1]
        leaf = f"{leaf_name} ({leaf_path})"
        if any(_short(n) == "trace_task" for n, _ in frames):
            roles["task"] += count
            task_self[leaf] += count
            by_package[leaf_path.split("/")[0] if "/" in leaf_path else leaf_path] += count
            for key in {f"{n} ({p})" for n, p in frames}:
                task_incl[key] += count
        elif any(marker in leaf_name for marker in IDLE):
            roles["idle"] += count
        else:
            roles["other"] += count
            other_self[leaf] += count
    total = sum(roles.values())
    if not total:
        return "no samples\n"
    tasks = roles["task"] or 1
    pct = lambda n, of: f"{100 * n / of:5.1f}%"  # noqa: E731
    lines = [f"samples: {total} (task {roles['task']}, other {roles['other']}, idle {roles['idle']})", "",
             "inside task execution (share of task samples), engine functions, inclusive:"]
    for key, n in task_incl.most_common():
        if _short(key.split(" (")[0]) in FOCUS:
            lines.append(f"  {pct(n, tasks)}  {key}")
    lines += ["", f"inside task execution, top {top} self (leaf):"]
    lines += [f"  {pct(n, tasks)}  {key}" for key, n in task_self.most_common(top)]
    lines += ["", "inside task execution, self time by package:"]
    lines += [f"  {pct(n, tasks)}  {key}" for key, n in by_package.most_common(10)]
    lines += ["", f"outside task execution (consumer, publishing, duties), top {top} self (share of all samples):"]
    lines += [f"  {pct(n, total)}  {key}" for key, n in other_self.most_common(top)]
    return "\n".join(lines) + "\n"
