"""The replay cache: workflows this process has replayed, held between steps so that the next step
replays only what was recorded since (``Settings.replay_cache_size``; 0 turns it off)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..core.replay import WorkflowExecution
from ..store.records import InstanceMeta


@dataclass
class CachedExecution:
    execution: WorkflowExecution
    version: int
    events: int = 0  # history events up to ``version`` (the history size the metrics and warnings report)
    # The instance's metadata as of ``version`` when the commit that made it changed nothing else:
    # the next step may then be decided without reading the store (StepRunner.run_with_result).
    meta: InstanceMeta | None = None

    @property
    def generation(self) -> int:
        return self.execution.generation

    @property
    def run(self) -> str:
        return self.execution.run


class ExecutionCache:
    """Replayed workflows this process holds between steps, least recently used evicted first.

    ``take`` removes the entry, so two threads never advance one generator; a step that fails in
    any way simply does not put it back, and the next step replays from the start."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, CachedExecution] = OrderedDict()
        self._lock = threading.Lock()

    def version_of(self, instance_id: str) -> int | None:
        """The history version of the entry held for ``instance_id``, without taking it."""
        with self._lock:
            entry = self._entries.get(instance_id)
            return entry.version if entry is not None else None

    def take(self, instance_id: str) -> CachedExecution | None:
        with self._lock:
            return self._entries.pop(instance_id, None)

    def put(self, instance_id: str, execution: WorkflowExecution, version: int, events: int = 0,
            meta: InstanceMeta | None = None) -> None:
        self.put_back(instance_id, CachedExecution(execution, version, events, meta))

    def put_back(self, instance_id: str, entry: CachedExecution | None) -> None:
        if entry is None or self.size <= 0:
            return
        with self._lock:
            self._entries[instance_id] = entry
            self._entries.move_to_end(instance_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


__all__ = ["CachedExecution", "ExecutionCache"]
