"""Which rows a run must produce, the ratios and targets computed from them, and how they are shown.

Every (workload, metric) a system is expected to report appears in the output: with a value, or with
the reason it has none ("n/a: ..." for a workload that does not apply to that system, "skipped: ..."
when the system is unavailable here, "error: ..." when it failed). Ratios are always ours / peer; the
"better" column says which direction favours us.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .common import Row, Sizes

SYSTEMS = ("ours", "celery", "celery-rb", "dbos-pg", "dbos-sqlite")
LABELS = {
    "ours": "ours", "celery": "Celery raw", "celery-rb": "Celery+backend",
    "dbos-pg": "DBOS pg", "dbos-sqlite": "DBOS sqlite",
}
WORKLOADS = "abcdefg"
NA_CHORD = "n/a: a chord needs a result backend"
NA_HISTORY = "n/a: no replayed history (a step's cost does not depend on it)"
NA_REDIS = "n/a: not stored in Redis"
NA_SQLITE = "n/a: SQLite runs inside the worker processes (counted there)"
NA_FLOW = "n/a: our flow-control gate, measured against our own unlimited fan-out in the same run"


def expected(system: str, sizes: Sizes, workloads: set[str], census: bool) -> list[tuple[str, str, str, str | None]]:
    """(workload, metric, better, n/a reason or None) for every row ``system`` must report."""
    dbos = system.startswith("dbos")
    out: list[tuple[str, str, str, str | None]] = []
    if "a" in workloads:
        out.append(("a", "activity steps/s", "higher", None))
    if "b" in workloads:
        out += [("b", "ms/step p50", "lower", None), ("b", "ms/step p99", "lower", None)]
    if "c" in workloads:
        out.append(("c", "fan-out/in s", "lower", NA_CHORD if system == "celery" else None))
    if "d" in workloads:
        lengths = sorted(sizes.d_history)
        na = None if system == "ours" else NA_HISTORY
        out += [("d", f"ms/step @ {n} events", "lower", na) for n in lengths]
        out += [("d", f"cost ratio {n}/{lengths[0]} events", "lower", na) for n in lengths[1:]]
    if "e" in workloads:
        out.append(("e", "starts/s", "higher", None))
    if "f" in workloads:
        for w in "abc":
            if w in workloads:
                na = NA_REDIS if dbos else (NA_CHORD if (system == "celery" and w == "c") else None)
                out += [("f", f"{m} [{w}]", "lower", na) for m in ("cmds/step", "bytes/step", "key bytes/step")]
        if "a" in workloads:
            out.append(("f", "worker CPU ms/step [a]", "lower", None))
            out.append(("f", "store CPU ms/step [a]", "lower", NA_SQLITE if system == "dbos-sqlite" else None))
        if census:
            out.append(("f", "round trips/step", "lower", NA_REDIS if dbos else None))
    if "g" in workloads:
        na = None if system == "ours" else NA_FLOW
        out += [("g", "ms/activity unlimited fan-out", "lower", na), ("g", "ms/activity limited fan-out", "lower", na),
                ("g", "cost ratio limited/unlimited", "lower", na)]
    return out


def median_rows(runs: list[list[Row]]) -> list[Row]:
    """One row per (system, workload, metric): the run with the median value (all values kept in
    ``extra["runs"]`` when there was more than one run)."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for run in runs:
        for row in run:
            groups.setdefault((row.system, row.workload, row.metric), []).append(row)
    out = []
    for group in groups.values():
        measured = sorted((r for r in group if r.value is not None), key=lambda r: r.value)  # type: ignore[arg-type, return-value]
        if not measured:
            out.append(group[0])
            continue
        row = measured[(len(measured) - 1) // 2]
        if len(group) > 1:
            row.extra = {**row.extra, "runs": [r.value for r in group]}
        out.append(row)
    return out


def derive(rows: list[Row], sizes: Sizes) -> list[Row]:
    """Rows computed from others (after medians are taken, so they agree with the figures shown):
    (d) the per-step cost at each history length relative to the shortest one; (g) the limited
    fan-out's per-activity cost relative to the unlimited one."""
    lengths = sorted(sizes.d_history)
    out = list(rows)
    for system in {r.system for r in rows}:
        cost = {n: next((r.value for r in rows if r.system == system and r.metric == f"ms/step @ {n} events"
                         and r.value is not None), None) for n in lengths}
        base = cost[lengths[0]]
        for n in lengths[1:]:
            if base and cost[n] is not None:
                out.append(Row("d", system, f"cost ratio {n}/{lengths[0]} events", cost[n] / base, "x", "lower"))
        by = {r.metric: r.value for r in rows if r.system == system and r.workload == "g" and r.value is not None}
        plain, limited = by.get("ms/activity unlimited fan-out"), by.get("ms/activity limited fan-out")
        if plain and limited is not None:
            out.append(Row("g", system, "cost ratio limited/unlimited", limited / plain, "x", "lower"))
    return out


def complete(rows: list[Row], systems: list[str], sizes: Sizes, workloads: set[str], census: bool,
             failures: dict[str, str]) -> list[Row]:
    """The measured rows plus a reason row for every expected row that has no value."""
    have = {(r.system, r.workload, r.metric): r for r in rows}
    out: list[Row] = []
    for system in systems:
        for workload, metric, better, na in expected(system, sizes, workloads, census):
            row = have.pop((system, workload, metric), None)
            if row is None:
                reason = na or failures.get(system) or "error: the run produced no figure"
                row = Row(workload, system, metric, None, "", better, skipped=reason)
            out.append(row)
    out.extend(have.values())  # anything extra a system reported
    return out


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    ours = {(r.workload, r.metric): r for r in rows if r.system == "ours" and r.value is not None}
    out = []
    for r in rows:
        mine = ours.get((r.workload, r.metric))
        if r.system == "ours" or mine is None or r.value is None or r.value == 0:
            continue
        out.append(
            {
                "workload": r.workload,
                "metric": r.metric,
                "peer": r.system,
                "ratio": mine.value / r.value,
                "better": "ours/peer > 1" if r.better == "higher" else "ours/peer < 1",
            }
        )
    return out


def targets(rows: list[Row], sizes: Sizes) -> list[dict[str, Any]]:
    """The issue's targets, evaluated on this run's figures (None when a figure is missing)."""
    by = {(r.system, r.workload, r.metric): r.value for r in rows}

    def ratio(metric: tuple[str, str], peer: str) -> float | None:
        mine, theirs = by.get(("ours", *metric)), by.get((peer, *metric))
        return mine / theirs if mine is not None and theirs else None

    lengths = sorted(sizes.d_history)
    d_metric = f"cost ratio {lengths[-1]}/{lengths[0]} events" if len(lengths) > 1 else ""
    checks = [
        ("(a) steps/s >= 1.5x DBOS-Postgres", ratio(("a", "activity steps/s"), "dbos-pg"), ">=", 1.5),
        ("(a) steps/s >= 0.7x raw Celery", ratio(("a", "activity steps/s"), "celery"), ">=", 0.7),
        ("(b) ms/step p50 <= 1.0x DBOS-Postgres", ratio(("b", "ms/step p50"), "dbos-pg"), "<=", 1.0),
        ("(c) fan-out/in <= 0.5x Celery chord", ratio(("c", "fan-out/in s"), "celery-rb"), "<=", 0.5),
        (
            f"(d) per-step cost at {lengths[-1]} events <= 2x at {lengths[0]}",
            by.get(("ours", "d", d_metric)),
            "<=",
            2.0,
        ),
        ("(f) Redis used_memory growth/step [a] <= 300 B", by.get(("ours", "f", "bytes/step [a]")), "<=", 300.0),
        ("(f) bytes held by keys/step [a] <= 300 B", by.get(("ours", "f", "key bytes/step [a]")), "<=", 300.0),
        # Issue #15: the sharded layout's cost per activity step against raw Celery's, same run.
        ("(f) cmds/step [a] <= 1.5x raw Celery", ratio(("f", "cmds/step [a]"), "celery"), "<=", 1.5),
        ("(f) store CPU ms/step [a] <= 1.0x raw Celery", ratio(("f", "store CPU ms/step [a]"), "celery"), "<=", 1.0),
    ]
    out = []
    for name, value, op, bound in checks:
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out.append({"target": name, "value": value, "bound": bound, "met": met})
    return out


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(rows: list[Row], systems: list[str], sizes: Sizes) -> str:
    """The human table: absolute figures, then ratios, targets and the reasons for empty cells."""
    metrics: list[tuple[str, str]] = []
    for r in rows:
        if (r.workload, r.metric) not in metrics:
            metrics.append((r.workload, r.metric))
    metrics.sort(key=lambda m: WORKLOADS.index(m[0]))
    width = max(len(f"({w}) {m}") for w, m in metrics) + 2 if metrics else 20
    lines = [f"sizes: {sizes.name}  (a) {sizes.a_workflows}x{sizes.a_steps}  (b) {sizes.b_steps}  "
             f"(c) {sizes.c_fanout}  (d) {'/'.join(map(str, sizes.d_history))} events  (e) {sizes.e_starts}  "
             f"(g) {sizes.g_fanout}", ""]
    lines += _figures(rows, systems, metrics, width)
    lines += _ratio_lines(rows, systems, metrics, width)
    lines += ["", "targets (issues #8, #15):"]
    for t in targets(rows, sizes):
        mark = "n/a" if t["met"] is None else ("MET" if t["met"] else "NOT MET")
        lines.append(f"  {mark:>7}  {t['target']}: {_fmt(t['value'])}")
    return "\n".join(lines)


def _figures(rows: list[Row], systems: list[str], metrics: list[tuple[str, str]], width: int) -> list[str]:
    """The absolute figures, one line per metric, and the reasons for the empty cells."""
    cells = {(r.system, r.workload, r.metric): r for r in rows}
    reasons: dict[str, int] = {}
    header = "".join(f"{LABELS[s]:>16}" for s in systems)
    lines = [f"{'workload / metric':<{width}}{header}"]
    for w, m in metrics:
        line = f"{f'({w}) {m}':<{width}}"
        for s in systems:
            r = cells.get((s, w, m))
            if r is None:
                text = ""
            elif r.value is not None:
                text = _fmt(r.value)
            else:
                assert r.skipped is not None
                note = reasons.setdefault(r.skipped, len(reasons) + 1)
                text = f"[{note}]"
            line += f"{text:>16}"
        lines.append(line)
    if reasons:
        lines += ["", "empty cells:"] + [f"  [{n}] {reason}" for reason, n in reasons.items()]
    return lines


def _ratio_lines(rows: list[Row], systems: list[str], metrics: list[tuple[str, str]], width: int) -> list[str]:
    rats = ratios(rows)
    if not rats:
        return []
    lines = ["", "ratios ours/peer (higher-is-better metrics: > 1 favours us; lower-is-better: < 1 favours us):"]
    peers = [s for s in systems if s != "ours"]
    lines.append(f"{'workload / metric':<{width}}{'better':>10}" + "".join(f"{LABELS[p]:>16}" for p in peers))
    by = {(x["workload"], x["metric"], x["peer"]): x for x in rats}
    for w, m in metrics:
        if not any((w, m, p) in by for p in peers):
            continue
        better = next(x["better"] for x in rats if x["workload"] == w and x["metric"] == m)
        line = f"{f'({w}) {m}':<{width}}{better[-3:]:>10}"
        for p in peers:
            x = by.get((w, m, p))
            line += f"{(_fmt(x['ratio']) + 'x') if x else '':>16}"
        lines.append(line)
    return lines


def write_json(path: Path, rows: list[Row], sizes: Sizes, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": {**meta, "sizes": sizes.__dict__}, "rows": [r.to_dict() for r in rows],
           "ratios": ratios(rows), "targets": targets(rows, sizes)}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
