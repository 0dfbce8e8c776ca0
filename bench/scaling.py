"""Process scaling (``python -m bench.run --scaling 1,2,4``): how activity throughput grows with workers.

For each process count N, our engine and raw Celery run workload (a) (chains of no-op activities, all
started at once: the workload whose figure is throughput) on N worker pools: N ``orchestrator worker``
commands for us, N ``celery worker`` nodes for Celery, every one prefork with the same concurrency
(one executing process by default), on the run's one store. As in the main run each system runs alone
and its pools stop before the next start; the counts and systems are interleaved (``--repeat`` takes
each figure's median), so a slow spell of the machine falls on both. The table gives each system's
steps/s, the ratio ours/Celery, and each system's speed-up against its own 1-process figure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import BenchEnv, Row

SCALING_SYSTEMS = ("ours", "celery")
METRIC = "activity steps/s"
Runner = Callable[[BenchEnv], list[Row]]


def parse_counts(value: str) -> list[int]:
    """``1,2,4`` -> [1, 2, 4]: distinct positive process counts, in the order given."""
    counts: list[int] = []
    for item in (v.strip() for v in value.split(",")):
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"process counts are positive integers, e.g. 1,2,4; got {item!r}")
        if int(item) not in counts:
            counts.append(int(item))
    if not counts:
        raise ValueError("give at least one process count, e.g. 1,2,4")
    return counts


@dataclasses.dataclass
class ScalingResult:
    """Every measured steps/s per (system, process count), and the systems that failed."""

    counts: list[int]
    concurrency: int
    samples: dict[tuple[str, int], list[float]] = dataclasses.field(default_factory=dict)
    busy: dict[tuple[str, int], list[float]] = dataclasses.field(default_factory=dict)  # machine busy cores
    failures: dict[tuple[str, int], str] = dataclasses.field(default_factory=dict)

    def value(self, system: str, count: int) -> float | None:
        found = self.samples.get((system, count))
        return statistics.median(found) if found else None

    def busy_cores(self, system: str, count: int) -> float | None:
        found = self.busy.get((system, count))
        return statistics.median(found) if found else None

    def speedup(self, system: str, count: int) -> float | None:
        base, here = self.value(system, self.counts[0]), self.value(system, count)
        return here / base if base and here is not None else None

    def ratio(self, count: int) -> float | None:
        ours, celery = self.value("ours", count), self.value("celery", count)
        return ours / celery if ours is not None and celery else None

    def table(self) -> list[dict[str, Any]]:
        return [{"processes": n, "ours_steps_per_s": self.value("ours", n),
                 "celery_steps_per_s": self.value("celery", n), "ours_over_celery": self.ratio(n),
                 "ours_speedup": self.speedup("ours", n), "celery_speedup": self.speedup("celery", n),
                 "ours_busy_cores": self.busy_cores("ours", n), "celery_busy_cores": self.busy_cores("celery", n),
                 "ours_samples": self.samples.get(("ours", n), []),
                 "celery_samples": self.samples.get(("celery", n), [])} for n in self.counts]


def measure(env: BenchEnv, counts: list[int], repeat: int, runners: dict[str, Runner],
            concurrency: int = 1) -> ScalingResult:
    """Run workload (a) for ours and raw Celery at each process count, ``repeat`` times interleaved."""
    sizes = dataclasses.replace(env.sizes, a_workflows=env.sizes.scale_workflows)
    result = ScalingResult(counts, concurrency)
    for round_no in range(repeat):
        for count in counts:
            for system in SCALING_SYSTEMS:
                if (system, count) in result.failures:
                    continue
                run_env = dataclasses.replace(env, sizes=sizes, workloads={"a"}, pools=count,
                                              concurrency=concurrency, census=False, profile_dir=None)
                print(f"-- {system} x {count} processes (run {round_no + 1}/{repeat}) ...", file=sys.stderr,
                      flush=True)
                t0 = time.perf_counter()
                try:
                    rows = runners[system](run_env)
                    row = next(r for r in rows if r.workload == "a" and r.metric == METRIC)
                    assert row.value is not None
                    result.samples.setdefault((system, count), []).append(row.value)
                    if row.extra.get("machine_busy_cores") is not None:
                        result.busy.setdefault((system, count), []).append(row.extra["machine_busy_cores"])
                except Exception as exc:  # noqa: BLE001 - one failed point must not hide the others
                    first_line = (str(exc).splitlines() or [""])[0]
                    result.failures[(system, count)] = f"{type(exc).__name__}: {first_line}"
                    print(f"   FAILED:\n{traceback.format_exc()}", file=sys.stderr)
                print(f"   {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    return result


def _cell(value: float | None, suffix: str = "", digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def render(result: ScalingResult, env: BenchEnv, store: str, repeat: int) -> str:
    """The scaling table, with what each process is and how many cores there are to share."""
    cpus = os.cpu_count() or 1
    sizes = env.sizes
    c = result.concurrency
    lines = [
        f"process scaling: workload (a), {sizes.scale_workflows} chains x {sizes.a_steps} no-op activities "
        f"started at once; store {store}; os.cpu_count() = {cpus}"
        + (f"; median of {repeat} runs" if repeat > 1 else ""),
        f"one process = one pool: `orchestrator worker -c {c}` / `celery worker -P prefork -c {c}` "
        f"(a consuming parent and {c} executing child{'ren' if c > 1 else ''})",
        "",
        f"{'processes':>9}  {'ours steps/s':>12}  {'celery steps/s':>14}  {'ours/celery':>11}  "
        f"{'ours speed-up':>13}  {'celery speed-up':>15}  {'busy cores ours/celery':>22}",
    ]
    for row in result.table():
        lines.append(f"{row['processes']:>9}  {_cell(row['ours_steps_per_s']):>12}  "
                     f"{_cell(row['celery_steps_per_s']):>14}  {_cell(row['ours_over_celery'], 'x', 2):>11}  "
                     f"{_cell(row['ours_speedup'], 'x', 2):>13}  {_cell(row['celery_speedup'], 'x', 2):>15}  "
                     f"{_cell(row['ours_busy_cores'], '', 1) + ' / ' + _cell(row['celery_busy_cores'], '', 1):>22}")
    beyond = [n for n in result.counts if n * c > cpus]
    lines += ["", f"speed-up: against the system's own {result.counts[0]}-process figure; busy cores: the whole "
              f"machine's (of {cpus}) while the chains ran, other jobs included.",
              "note: each pool's consuming parent, the Redis servers and this driver share the same cores."]
    if beyond:
        lines.append(f"note: beyond the core count ({cpus}) processes share CPUs: with {' and '.join(map(str, beyond))}"
                     " processes throughput cannot grow linearly.")
    for (system, count), reason in result.failures.items():
        lines.append(f"failed: {system} x {count}: {reason}")
    return "\n".join(lines)


def write_json(path: Path, result: ScalingResult, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "scaling": result.table(),
           "failures": [{"system": s, "processes": n, "reason": r} for (s, n), r in result.failures.items()]}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
