"""The step loop: load, plan, commit, record, publish; again while the commit says more arrived.

Safe to run twice at once: the commit's version check lets exactly one take effect and the other
re-reads. Every error while deciding a step (or encoding its commit) fails the instance with an
error naming the step, the workflow and the cause (``_decide``): only an unregistered workflow
(another pool's step) and the store being unavailable (retried) leave the instance as it was.

``prefetched`` is the snapshot a waking delivery returned (worker/activities.py), used if it still
fits the cached execution. The loop returns the activity a step kept for eager execution,
which the engine runs next (Engine.run_step: the eager-activity loop).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from .. import metrics
from ..core.errors import FailureDetails, WorkflowNotRegisteredError
from ..core.history import HistoryEvent, HistoryFormatError
from ..core.replay import WorkflowExecution
from ..core.text import clip_head, safe_str
from ..core.vocabulary import STEP_CLAIM, TERMINAL, member, task_token
from ..store.connection import StoreError
from ..store.records import ActivityRecord, InstanceMeta, activity_task_key
from ..store.redis_store import RedisStore
from ..store.step_io import Commit, CommitResult, InboxEntry, Snapshot
from . import recovery, tracing
from .cache import CachedExecution, ExecutionCache
from .liveness import LivenessHolder
from .planner import Decision, StepPlanner, failed_commit

log = logging.getLogger("orchestrator.engine")
MAX_STEP_ROUNDS = 1000


class StepRunner:
    def __init__(self, store: RedisStore, planner: StepPlanner, cache: ExecutionCache, clock: Callable[[], int],
                 publish_outbox: Callable[[str, dict[str, bytes]], None], history_warn_events: int,
                 liveness: LivenessHolder | None = None, lost_limit: int = 1,
                 reap_if_dead_here: Callable[[str], bool] = lambda process_id: False, *,
                 admit: Callable[[Snapshot], bool] | None = None,
                 finished: Callable[[InstanceMeta], None] | None = None) -> None:
        """``admit``: may this snapshot's step run now (flow control, worker/flow.py)? ``finished``: an
        instance in a flow scope has finished (its slot goes to the next)."""
        self.liveness = liveness
        self.reap_if_dead_here = reap_if_dead_here
        self.lost_limit = lost_limit
        self.store = store
        self.admit = admit
        self.finished = finished
        self.planner = planner
        self.cache = cache
        self.clock = clock
        self.publish_outbox = publish_outbox
        self.history_warn_events = history_warn_events

    def run(self, instance_id: str, prefetched: Snapshot | None = None) -> list[ActivityRecord]:
        """Bring the instance up to date with its inbox; the activities its steps kept to run eagerly."""
        eager: list[ActivityRecord] = []
        me = self._claim(instance_id)
        for _ in range(MAX_STEP_ROUNDS):
            began = time.perf_counter()
            cached = self.cache.take(instance_id)
            try:
                snap, cached = self._load(instance_id, cached, prefetched)
            except HistoryFormatError as err:
                if self.fail_unreadable(instance_id, err):
                    continue
                return eager
            prefetched = None
            if self._stops(instance_id, snap, cached, me) or snap is None:  # (None: for the type checker)
                return eager
            started_ms = self.clock()
            tracing.begin_step(snap.meta)
            if me is None:  # its processes kept dying in this step: fail it (worker/liveness.py)
                me = ""
                decision: Decision | None = (self._lost_step(snap), None) if not snap.meta.is_terminal else None
            else:
                decision = None if snap.meta.is_terminal or not snap.inbox else self._decide(snap, cached)
            if decision is None:
                tracing.end_step(snap.meta, None, started_ms, committed=False)
                self.cache.put_back(instance_id, cached)
                if self.store.release(instance_id, me):
                    continue
                return eager
            decision[0].claimer = me
            commit, execution, result = self._commit(snap, *decision)
            tracing.end_step(snap.meta, commit, started_ms, committed=result.ok)
            if result.gone:
                self._let_go(instance_id, me)
                return eager
            if not result.ok:
                log.debug("step of %s lost the race at version %s; retrying", instance_id, commit.version)
                metrics.record_step_conflict(self.store, snap.meta.name)
                continue
            self._committed(instance_id, snap, cached, commit, execution, result, time.perf_counter() - began)
            if commit.eager is not None:
                eager.append(commit.eager)
            if not result.rerun:
                return eager
        log.warning("instance %s still had work after %d rounds; leaving it to the sweeper",
                    instance_id, MAX_STEP_ROUNDS)
        return eager

    def run_with_result(self, rec: ActivityRecord, event: HistoryEvent) -> list[ActivityRecord] | None:
        """Decide the next step of an eager activity's instance with its result in hand, and commit
        the result with the step in one script: no delivery into the inbox, no step claim, no load.

        Only when this process holds the instance's replayed workflow with the metadata of its last
        commit (``CachedExecution.meta``); the commit's version check stands for the reads. Returns
        the activities the step kept to run eagerly, or None when the result must go the usual way
        (its delivery): nothing cached, or the instance moved on meanwhile. A process that dies
        before this commit loses the result with the attempt's claim, and the attempt runs again
        (activities run at least once); one no longer awaited goes the usual way, and is dropped there."""
        instance_id = rec["id"]
        cached = self.cache.take(instance_id)
        meta = cached.meta if cached is not None else None
        if cached is None or meta is None or meta.flow_scope or meta.flow_wait or self.liveness is None:
            self.cache.put_back(instance_id, cached)
            return None
        began = time.perf_counter()
        key = activity_task_key(rec)
        snap = Snapshot(meta, [], [InboxEntry("", task_token(key), event)], cached.version)
        started_ms = self.clock()
        tracing.begin_step(meta)
        try:
            decision = self._decide(snap, cached, fail_instance=False)
            if decision is None or decision[1] is None:  # nothing to decide, or the code did not run
                tracing.end_step(meta, None, started_ms, committed=False)
                return None
            decision[0].consumed, decision[0].completed = [], key  # the result never was in the inbox
            decision[0].run, decision[0].gen = meta.run, meta.generation
            commit, execution, result = self._commit(snap, *decision, fail_instance=False)
        except (StoreError, WorkflowNotRegisteredError):
            tracing.end_step(meta, None, started_ms, committed=False)
            raise
        except Exception as err:  # noqa: BLE001 - deciding or encoding raised: nothing was written
            # The usual way delivers the result into the inbox and runs the step again, which fails
            # the instance (and logs why, once) with the result in its history.
            log.info("step of %s with the result of %s in hand raised %s; delivering it",
                     instance_id, rec["name"], type(err).__name__)
            tracing.end_step(meta, None, started_ms, committed=False)
            return None
        tracing.end_step(meta, commit, started_ms, committed=result.ok)
        if result.ok:
            self._committed(instance_id, snap, cached, commit, execution, result, time.perf_counter() - began)
            kept = [commit.eager] if commit.eager is not None else []
            return kept + self.run(instance_id) if result.rerun else kept
        # The replay went past what is stored: the execution is not put back. A result no longer
        # awaited goes the usual way too, whose delivery drops it (and says so).
        return [] if result.gone else None

    def _stops(self, instance_id: str, snap: Snapshot | None, cached: CachedExecution | None,
               me: str | None) -> bool:
        """Does the step end here: the instance is gone (purged while the step was on its way: its
        claim must not outlive it), or it waits for flow control?"""
        if snap is None:
            self._let_go(instance_id, me)
            return True
        return self._parked(snap, cached, me)

    def _parked(self, snap: Snapshot, cached: CachedExecution | None, me: str | None) -> bool:
        """Must the step wait for flow control (worker/flow.py)? Then its claim is let go."""
        if self.admit is None or not snap.inbox or snap.meta.is_terminal or self.admit(snap):
            return False
        instance_id = snap.meta.instance_id
        self.cache.put_back(instance_id, cached)
        self._let_go(instance_id, me)
        return True

    def _let_go(self, instance_id: str, me: str | None) -> None:
        """Drop this process's claim on the instance's step when the step ends without a commit."""
        if me and self.liveness is not None:
            self.store.liveness.release([member(instance_id, STEP_CLAIM)])

    def _claim(self, instance_id: str) -> str | None:
        """Claim the instance's step for this process: its id ('' without liveness), or None when the
        step was lost with its process more than ``lost_limit`` times in a row."""
        if self.liveness is None:
            return ""
        me = self.liveness.get()
        lost, other = self.store.liveness.take_step(me.process_id, instance_id, me.alive_since())
        if other:  # held by a process that looks alive: one that died here is reaped (and counted) now
            dead = self.reap_if_dead_here(other)  # its pool requeued the step at once, before it expired
            lost, _ = self.store.liveness.take_step(me.process_id, instance_id, me.alive_since(), force=not dead)
        return None if lost > self.lost_limit else me.process_id

    def _lost_step(self, snap: Snapshot) -> Commit:
        meta = snap.meta
        failure = FailureDetails(
            f"step {meta.version + 1} of workflow {meta.name!r} (instance {meta.instance_id!r}) was lost "
            f"{self.lost_limit + 1} times with the worker process running it (the process died, was killed or "
            "stopped heartbeating: code that exits or crashes its process, e.g. os._exit, a fatal signal or "
            "running out of memory); failing the instance so that it takes no more processes down",
            "StepWorkerLostError")
        log.error("%s", failure.message, extra={"instance_id": meta.instance_id, "workflow": meta.name})
        return failed_commit(meta, self.clock(), failure)

    def _decide(self, snap: Snapshot, cached: CachedExecution | None, *,
                fail_instance: bool = True) -> Decision | None:
        """The planner's decision, or, when deciding raised (anything but an unregistered workflow or
        the store being unavailable, which the caller retries), the commit that fails the instance
        with that error: a step that raises would otherwise be retried forever, recording nothing.
        With ``fail_instance`` False the error is raised instead (the fused hop's usual-way fallback)."""
        try:
            return self.planner.decide(snap, cached)
        except WorkflowNotRegisteredError:
            if snap.meta.name in self.planner.registry.workflows and not snap.meta.stalled:
                # The name is served here but not the version this instance recorded: Dapr's STALLED,
                # until a pool with that version runs its step (the sweeper sends it on; see _committed).
                self.store.mark_stalled(snap.meta.instance_id, snap.meta.workflow_version or "unversioned")
            raise
        except StoreError:
            raise
        except Exception as err:  # noqa: BLE001 - see the docstring
            if not fail_instance:
                raise
            return self._engine_failure(snap, err, "could not be decided"), None

    def _commit(self, snap: Snapshot, commit: Commit, execution: WorkflowExecution | None, *,
                fail_instance: bool = True) -> tuple[Commit, WorkflowExecution | None, CommitResult]:
        """Commit the decision; one the store cannot encode fails the instance instead (or, with
        ``fail_instance`` False, raises: the encoding fails before anything is written)."""
        commit.name, commit.old_status = snap.meta.name, snap.meta.status
        if commit.eager is not None and self.liveness is not None:
            commit.taker = self.liveness.get().process_id  # claimed for this process by the commit
        try:
            return commit, execution, self.store.commit(snap.meta.instance_id, commit)
        except StoreError:
            raise
        except Exception as err:  # noqa: BLE001 - see the docstring
            if not fail_instance:
                raise
            failed = self._engine_failure(snap, err, "could not be stored")
            return failed, None, self.store.commit(snap.meta.instance_id, failed)

    def _engine_failure(self, snap: Snapshot, err: Exception, what: str) -> Commit:
        meta = snap.meta
        failure = FailureDetails(
            clip_head(f"step {meta.version + 1} of workflow {meta.name!r} (instance {meta.instance_id!r}) {what}: "
                      f"{type(err).__name__}: {safe_str(err)}"),
            type(err).__name__, FailureDetails.from_exception(err).stack_trace,
            qualified_type=FailureDetails.from_exception(err).qualified_type)
        log.error("%s; failing the instance", failure.message, exc_info=err,
                  extra={"instance_id": meta.instance_id, "workflow": meta.name})
        return failed_commit(meta, self.clock(), failure)

    def _load(self, instance_id: str, cached: CachedExecution | None,
              prefetched: Snapshot | None) -> tuple[Snapshot | None, CachedExecution | None]:
        after = cached.version if cached else None
        snap = prefetched if prefetched is not None and prefetched.after_version == after else \
            self.store.load(instance_id, after)
        if snap is not None and cached and (cached.run != snap.meta.run or cached.generation != snap.meta.generation
                                            or cached.version > snap.meta.version):
            cached = None  # another run (replaced, purged and recreated), or continued as new: start from scratch
            snap = self.store.load(instance_id)
        return snap, cached

    def _committed(self, instance_id: str, snap: Snapshot, cached: CachedExecution | None, commit: Commit,
                   execution: WorkflowExecution | None, result: CommitResult, seconds: float) -> None:
        """After a commit: the cache, the log, metrics, the history-size warning, the outbox."""
        # History size after this step: what the cached entry knew, plus what was read, plus the new entry.
        history_events = (
            0 if commit.reset else (cached.events if cached else 0) + len(snap.history) + len(commit.events)
        )
        if execution is None:
            if commit.status not in TERMINAL:
                self.cache.put_back(instance_id, cached)  # code did not run: replay still holds
        elif not (execution.finished or commit.reset):
            execution.committed()
            self.cache.put(instance_id, execution, result.version, history_events,
                           _meta_after(snap.meta, commit, result))
        if snap.meta.stalled:
            self.store.clear_stalled(instance_id)  # a pool with its version ran it
        log.info("step committed", extra={"instance_id": instance_id, "workflow": snap.meta.name,
                                          "version": result.version, "status": commit.status})
        metrics.record_step(self.store, snap.meta.name, snap.meta.status, commit.status, seconds,
                            inbox_events=len(snap.inbox), history_events=history_events,
                            lifetime=(commit.now - snap.meta.created) / 1000)
        recovery.warn_history_size(self.store, self.history_warn_events, snap.meta.name, instance_id,
                                   history_events, len(commit.events))
        self.publish_outbox(instance_id, commit.outbox)
        if commit.status in TERMINAL and snap.meta.flow_scope and self.finished is not None:
            self.finished(snap.meta)

    def fail_unreadable(self, instance_id: str, err: HistoryFormatError) -> bool:
        """Fail an instance whose history or inbox does not decode (see worker/recovery.py). True when
        a concurrent step changed the instance first (the caller looks again)."""
        meta: InstanceMeta | None = self.store.get_meta(instance_id)
        if meta is None or meta.is_terminal:
            self.store.release(instance_id)
            return False
        failure = FailureDetails(f"instance {instance_id!r} cannot be replayed: {err}; its history and inbox "
                                 "are left as they are", "HistoryFormatError", None)
        log.error("%s", failure.message, extra={"instance_id": instance_id, "workflow": meta.name})
        commit = failed_commit(meta, self.clock(), failure)
        result = self.store.commit(instance_id, commit)
        if result.ok:
            self.publish_outbox(instance_id, commit.outbox)
        return not (result.ok or result.gone)


def _meta_after(meta: InstanceMeta, commit: Commit, result: CommitResult) -> InstanceMeta | None:
    """The instance's metadata after ``commit``, when the commit changed no field beyond its version
    and status (else None: the next step reads it from the store)."""
    if commit.fields or commit.drop_fields or commit.reset:
        return None
    return dataclasses.replace(meta, version=result.version, status=commit.status, updated=commit.now, stalled=None)


__all__ = ["MAX_STEP_ROUNDS", "StepRunner"]
