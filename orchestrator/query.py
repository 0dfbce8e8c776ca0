"""Listing and counting instances for the client (Dapr-style ``WorkflowState`` results).

The reads themselves are ``store.queries.StoreQueries`` (the one query module, which the CLI, the
HTTP API and the dashboard use too, through ``WorkflowClient.queries``); this module parses the
client's filters and turns metadata into ``WorkflowState``. How the indexes answer, and what a page
costs: see ``orchestrator.store.queries``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .state import WorkflowState, WorkflowStatus
from .store.queries import MAX_PAGE, Counts, StoreQueries
from .store.redis_store import RedisStore

STATUSES = tuple(s.name for s in WorkflowStatus if s is not WorkflowStatus.UNKNOWN)


@dataclass
class InstancePage:
    """One page of a listing: the instances, how many match in total, and where the next page starts."""

    items: list[WorkflowState]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [s.to_dict() for s in self.items], "total": self.total, "offset": self.offset,
                "limit": self.limit, "next_offset": self.next_offset}


def parse_status(status: str | WorkflowStatus | None) -> str | None:
    if status is None or status == "":
        return None
    if isinstance(status, WorkflowStatus):
        name = status.name
    elif isinstance(status, str):
        name = WorkflowStatus.parse(status).name
    else:
        raise TypeError(f"status must be a WorkflowStatus or its name, got {type(status).__name__}")
    if name not in STATUSES:
        raise ValueError(f"cannot filter by status {name}; expected one of {', '.join(STATUSES)}")
    return name


class InstanceQuery:
    """The client's queries: its filters parsed, its results as ``WorkflowState``."""

    def __init__(self, store: RedisStore | StoreQueries) -> None:
        self.queries = store if isinstance(store, StoreQueries) else StoreQueries(store)

    def page_ids(self, *, status: str | WorkflowStatus | None = None, name: str | None = None,
                 parent: str | None = None, created_from: int | None = None, created_to: int | None = None,
                 offset: int = 0, limit: int = 50) -> tuple[list[str], int]:
        """(ids of one page, newest first; total matching). Times are ms since the epoch, inclusive."""
        return self.queries.page_ids(status=parse_status(status), name=name, parent=parent,
                                     created_from=created_from, created_to=created_to, offset=offset, limit=limit)

    def page(self, *, fetch_payloads: bool = False, **filters: Any) -> InstancePage:
        offset, limit = filters.get("offset", 0), filters.get("limit", 50)
        ids, total = self.page_ids(**filters)
        items = self.states(ids, fetch_payloads=fetch_payloads)
        more = offset + len(ids) < total
        return InstancePage(items, total, offset, limit, offset + len(ids) if more else None)

    def states(self, ids: Iterable[str], *, fetch_payloads: bool = False) -> list[WorkflowState]:
        """States of ``ids`` in one pipelined read (instances purged meanwhile are left out)."""
        return [WorkflowState(m, fetch_payloads) for m in self.queries.metas(ids, fetch_payloads=fetch_payloads)]

    def counts(self, *, created_from: int | None = None, created_to: int | None = None) -> Counts:
        """Counts overall, by status and by workflow name x status, optionally within a creation range."""
        return self.queries.counts(created_from=created_from, created_to=created_to)

    def pending_calls(self, instance_id: str) -> list[dict[str, Any]]:
        return self.queries.pending_calls(instance_id)


__all__ = ["InstanceQuery", "InstancePage", "Counts", "STATUSES", "MAX_PAGE", "parse_status"]
