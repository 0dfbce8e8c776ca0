"""Retention: finished instances are purged in the background once their retention has passed.

A top-level instance that finishes is entered in its shard's ``expire`` index at
``finished + retention`` (COMMIT does it: the retention set for its workflow name through the client,
``WorkflowClient.set_workflow_retention``, else the setting ``retention_seconds``, 7 days; 0 keeps
it). Every pool's sweeper reads what is due in every shard (one round trip) and purges it shard
by shard, with its children (children are never entered themselves: they go with their parent, deepest first, as
``purge_workflow`` does). A tree with a part still running (a child a non-recursive terminate left
behind) is tried again an hour later. With ``retention_export_dir`` set, each instance's history is
written there first (``<id>.json``, the ``orchestrator.history`` export format) and an instance whose
export fails is not purged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..history_export import export_document, write_file
from ..state import WorkflowState
from ..store.redis_store import RedisStore
from ..store.scripts import PurgeCode

log = logging.getLogger("orchestrator.engine")
RETRY_LATER_MS = 3600 * 1000


class RetentionSweeper:
    def __init__(self, store: RedisStore, clock: Callable[[], int], export_dir: str | None = None,
                 publish_outbox: Callable[[str, dict[str, bytes]], None] | None = None, batch: int = 100) -> None:
        self.store, self.clock, self.batch = store, clock, batch
        self.export_dir = Path(export_dir) if export_dir else None
        self.publish_outbox = publish_outbox

    def sweep(self) -> int:
        """Purge what is due, shard by shard; how many instances (children included) went."""
        now = self.clock()
        return sum(self._purge_tree(instance_id, now) for due in self.store.due_expiries(now, self.batch)
                   for instance_id in due)

    def _tree(self, instance_id: str) -> list[str]:
        """``instance_id`` and its descendants, parents first."""
        order, todo = [], [instance_id]
        while todo:
            current = todo.pop()
            order.append(current)
            todo.extend(c for c in self.store.child_ids(current) if c not in order)
        return order

    def _purge_tree(self, root: str, now: int) -> int:
        tree = self._tree(root)
        metas = {i: self.store.get_meta(i) for i in tree}
        if metas[root] is None or not metas[root].is_terminal:  # type: ignore[union-attr]
            self.store.drop_expiry(root)  # purged meanwhile, or started again (a rerun of the id)
            return 0
        if any(m is not None and not m.is_terminal for m in metas.values()):
            self.store.postpone_expiry(root, now + RETRY_LATER_MS)
            return 0
        purged = 0
        for member in reversed(tree):  # children before their parent: an interrupted purge repeats
            if metas[member] is None:
                continue
            if self.export_dir is not None and not self._export(member):
                self.store.postpone_expiry(root, now + RETRY_LATER_MS)
                return purged
            code, _ = self.store.purge(member)
            if code == PurgeCode.PUBLISHING and self.publish_outbox is not None:
                self.publish_outbox(member, self.store.read_outbox(member))  # its last dispatches, then purge
                code, _ = self.store.purge(member)
            if code == PurgeCode.PURGED:
                purged += 1
            elif code != PurgeCode.UNKNOWN:
                self.store.postpone_expiry(root, now + RETRY_LATER_MS)
                return purged
        log.info("retention purged %s and %d descendants", root, max(0, purged - 1), extra={"instance_id": root})
        return purged

    def _export(self, instance_id: str) -> bool:
        snap = self.store.load(instance_id)
        if snap is None:
            return True
        assert self.export_dir is not None
        info = {**WorkflowState(snap.meta).to_dict(), "generation": snap.meta.generation,
                "history_version": snap.meta.version}
        try:
            self.export_dir.mkdir(parents=True, exist_ok=True)
            write_file(export_document(info, snap.history), self.export_dir / f"{instance_id}.json")
        except OSError as exc:
            log.error("retention could not export %s to %s (%s); it is kept and tried again later", instance_id,
                      self.export_dir, exc, extra={"instance_id": instance_id})
            return False
        return True


__all__ = ["RetentionSweeper"]
