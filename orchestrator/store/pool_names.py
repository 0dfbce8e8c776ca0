"""What the pools of one app id register, compared (pure: records in, descriptions out).

Pools of one app id share one queue, so a step or activity can land on a process without its code
(it goes back to the queue, worker/activities.py). Two readers say so in the same words: a pool
joining its app (``join_warning``, logged by worker/celery_app.py) and the listing
(``mismatches``, read by ``WorkflowClient.list_pools``: ``orchestrator pools``, ``GET /api/pools``,
the dashboard's Pools page). A workflow is compared by name and version (``name@version``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .liveness import ProcessInfo

# The processes that own a registry of their own; a prefork child ("worker") repeats its pool's.
POOL_KINDS = ("pool", "inproc")

ADVICE = ("A step or activity that lands on a process lacking its name goes back to the queue for one that has it; "
          "give each module its own app id (--app-id) to route them directly")

Names = tuple[set[str], set[str]]  # (workflows as name or name@version, activities)


def workflow_names(workflows: Mapping[str, Sequence[str]]) -> set[str]:
    """A registry record's workflows (name -> versions, '' unversioned) as ``name`` / ``name@version``."""
    return {f"{name}@{v}" if v else name for name, versions in workflows.items() for v in (versions or [""])}


def names_of(processes: Iterable[ProcessInfo]) -> Names:
    """Every workflow and activity the processes register, together."""
    wf: set[str] = set()
    act: set[str] = set()
    for p in processes:
        wf |= workflow_names(p.workflows)
        act.update(p.activities)
    return wf, act


def lacking(subject: str, mine: Names, theirs: Names, verb: str = "lacks") -> list[str]:
    """What ``subject`` (registering ``mine``) lacks of ``theirs``: ``"<subject> lacks the workflows [...]"``."""
    gaps = (("workflows", theirs[0] - mine[0]), ("activities", theirs[1] - mine[1]))
    return [f"{subject} {verb} the {what} {sorted(names)}" for what, names in gaps if names]


def join_warning(app_id: str, mine: Names, peers: Sequence[ProcessInfo]) -> str | None:
    """The warning of a pool (registering ``mine``) joining ``app_id``, whose other live processes are
    ``peers``: None when their pools register the same names."""
    pools = [p for p in peers if p.kind in POOL_KINDS]
    if not pools:
        return None
    theirs = names_of(pools)
    parts = lacking("this pool", mine, theirs) + lacking("they", theirs, mine, verb="lack")
    if not parts:
        return None
    return (f"this pool joins app {app_id!r}, whose other pools ({len(pools)}) register a different set of "
            f"names: {'; '.join(parts)}. {ADVICE}")


def _label(p: ProcessInfo) -> str:
    return f"process {p.process_id} ({p.host} pid {p.pid})"


def mismatches(processes: Iterable[ProcessInfo]) -> list[dict[str, Any]]:
    """Per app id whose pools register different names: ``{"app_id", "message", "lacking": [{"process_id",
    "host", "pid", "workflows", "activities"}]}``, each process with what the app's other pools register
    and it does not. Sorted by app id; only pool processes count (see POOL_KINDS)."""
    by_app: dict[str, list[ProcessInfo]] = {}
    for p in processes:
        if p.kind in POOL_KINDS:
            by_app.setdefault(p.app_id, []).append(p)
    out = []
    for app_id, pools in sorted(by_app.items()):
        everything = names_of(pools)
        lacks, parts = [], []
        for p in sorted(pools, key=lambda p: p.process_id):
            mine = names_of([p])
            missing = everything[0] - mine[0], everything[1] - mine[1]
            if missing[0] or missing[1]:
                lacks.append({"process_id": p.process_id, "host": p.host, "pid": p.pid,
                              "workflows": sorted(missing[0]), "activities": sorted(missing[1])})
                parts += lacking(_label(p), mine, everything)
        if lacks:
            out.append({"app_id": app_id, "lacking": lacks,
                        "message": f"the pools ({len(pools)}) of app {app_id!r} register different names: "
                                   f"{'; '.join(parts)}. {ADVICE}"})
    return out


def listing(found: Sequence[ProcessInfo], now: int, expiry_ms: int) -> dict[str, Any]:
    """The pools listing's one shape: ``{"items": [process dicts with "alive"], "mismatches": [...]}``;
    mismatches among the live processes only (a dead one takes no more work)."""
    live = [p for p in found if p.heartbeat >= now - expiry_ms]
    return {"items": [{**p.to_dict(), "alive": p.heartbeat >= now - expiry_ms} for p in found],
            "mismatches": mismatches(live)}
