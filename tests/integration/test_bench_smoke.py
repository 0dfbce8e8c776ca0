"""The benchmark keeps working: one tiny run of ``python -m bench.run`` over every system, and one of
its process scaling (``--scaling``).

No timing is asserted (benchmarks are not tests); what is checked is that the one command runs end to
end on real worker processes, reports every expected row with a figure or a stated reason, and writes
valid JSON with the ratios and targets.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.common import Sizes
from bench.report import LABELS, SYSTEMS, WORKLOADS, expected

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_bench_run_reports_every_row_and_valid_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "tiny", "--json", str(out), "--work-dir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    doc = json.loads(out.read_text())
    rows = {(r["system"], r["workload"], r["metric"]): r for r in doc["rows"]}
    sizes = Sizes.named("tiny")

    for system in SYSTEMS:
        for workload, metric, _better, na in expected(system, sizes, set(WORKLOADS), census=True):
            row = rows.get((system, workload, metric))
            assert row is not None, f"missing row {system} ({workload}) {metric}"
            if na is not None:
                assert row["value"] is None and row["skipped"] == na
            elif row["value"] is None:
                # Only an unavailable peer (DBOS or PostgreSQL missing here) may lack a figure.
                assert system.startswith("dbos") and row["skipped"].startswith("skipped:"), row
            else:
                assert isinstance(row["value"], (int, float)) and math.isfinite(row["value"]), row

    # Our engine and both Celery peers always run: their measurable rows have figures.
    for system in ("ours", "celery", "celery-rb"):
        measured = [r for (s, _, _), r in rows.items() if s == system and r["skipped"] is None]
        assert measured and all(r["value"] is not None for r in measured)
    assert rows[("ours", "a", "activity steps/s")]["value"] > 0
    assert rows[("ours", "f", "round trips/step")]["extra"]["round_trips_by_command"]

    # A ratio ours/peer for every figure both sides measured, with the right value.
    ratios = {(x["workload"], x["metric"], x["peer"]): x["ratio"] for x in doc["ratios"]}
    for (system, workload, metric), row in rows.items():
        mine = rows.get(("ours", workload, metric), {}).get("value")
        if system != "ours" and row["value"] and mine is not None:
            assert math.isclose(ratios[(workload, metric, system)], mine / row["value"])
    assert {t["target"][:3] for t in doc["targets"]} == {"(a)", "(b)", "(c)", "(d)", "(f)"}
    assert doc["meta"]["worker_processes"] == 2
    for label in (LABELS[s] for s in SYSTEMS):
        assert label in proc.stdout


def test_tiny_scaling_run_prints_a_row_of_figures_per_process_count(tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "tiny", "--scaling", "1,2", "--json", str(out),
         "--work-dir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    assert f"os.cpu_count() = {os.cpu_count()}" in proc.stdout
    header = next(line for line in proc.stdout.splitlines() if line.lstrip().startswith("processes"))
    for column in ("ours steps/s", "celery steps/s", "ours/celery", "ours speed-up", "celery speed-up"):
        assert column in header
    number = r"[\d,]+(?:\.\d+)?"
    for count in (1, 2):
        row = rf"^\s*{count}\s+{number}\s+{number}\s+{number}x\s+{number}x\s+{number}x\s"
        assert re.search(row, proc.stdout, re.MULTILINE), f"no figures for {count} processes:\n{proc.stdout}"

    table = json.loads(out.read_text())["scaling"]
    assert [r["processes"] for r in table] == [1, 2]
    for r in table:
        assert r["ours_steps_per_s"] > 0 and r["celery_steps_per_s"] > 0
        assert math.isclose(r["ours_over_celery"], r["ours_steps_per_s"] / r["celery_steps_per_s"])
    assert table[0]["ours_speedup"] == table[0]["celery_speedup"] == 1.0
    assert math.isclose(table[1]["ours_speedup"], table[1]["ours_steps_per_s"] / table[0]["ours_steps_per_s"])
