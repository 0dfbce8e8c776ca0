"""Dispatch: what leaves the engine after a step's commit, and how activities travel.

Activities ride in the commit itself when the publisher can build their messages (the COMMIT script
pushes them, a wide fan-out packed several per message: worker/activities.py ``batches``), or run
here right after the commit when eager (``may_run_eagerly``); otherwise each attempt goes through
the outbox. The outbox (child starts, parent notices, child terminations, activities without a
direct message) is published after the commit and acknowledged; a sweeper republishes what a crash
left unpublished, and every record is idempotent (a child start is recognised by its parent call,
a delivery by its task key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

import kombu.exceptions

from ..core.errors import FailureDetails
from ..core.history import ChildCompleted, ChildFailed, ExecutionStarted, ExecutionTerminated, TaskFailed
from ..core.text import safe_str
from ..core.vocabulary import CONTROL_TOKEN, member, seq_of, task_token
from ..store import records
from ..store.connection import StoreError
from ..store.records import ActivityRecord
from ..store.redis_store import RedisStore
from ..store.scripts import CreateCode, DeliverCode
from ..store.step_io import Commit
from .activities import batches
from .publisher import Publisher

log = logging.getLogger("orchestrator.engine")
# Publishing errors a later try can cure (the sweeper republishes the outbox): everything else fails the call.
RETRY_LATER: tuple[type[Exception], ...] = (StoreError, kombu.exceptions.OperationalError)


class Dispatcher:
    def __init__(self, store: RedisStore, publisher: Publisher, clock: Callable[[], int], *,
                 fanout_parallelism: int, activity_batch_size: int,
                 may_run_eagerly: Callable[[ActivityRecord], bool],
                 wake: Callable[[str, str | None], None], apply_controls: Callable[[str], None]) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.fanout_parallelism = fanout_parallelism
        self.activity_batch_size = activity_batch_size
        self.may_run_eagerly = may_run_eagerly
        self.wake = wake  # (instance id, app or None): a delivery woke it
        self.apply_controls = apply_controls  # a terminate was delivered to a child

    def hand_back_eager(self, kept: list[ActivityRecord]) -> None:
        """Kept activities a step loop left unrun (it raised): their commit claimed them for this
        process and indexed them nowhere, so they are let go and queued, as far as Redis allows."""
        if not kept:
            return
        try:
            self.store.liveness.release([member(rec["id"], records.activity_task_key(rec)) for rec in kept])
            with self.publisher.batch():
                for rec in kept:
                    self.publisher.send_activity(rec, rec["app"])
        except Exception as exc:  # noqa: BLE001 - the caller's error is the one raised
            log.warning("could not queue %d kept activities (%s); they come back when this process is reaped",
                        len(kept), exc)

    # -- in the commit ---------------------------------------------------------------------------------
    def route_activities(self, scheduled: list[ActivityRecord], commit: Commit) -> None:
        """Put a step's activity attempts in its commit: eager, pushed by the script, or in the outbox."""
        if len(scheduled) == 1 and self.may_run_eagerly(scheduled[0]):
            commit.eager = scheduled[0]  # run here after the commit (Engine.run_step), not queued
            # Claimed for this process by the commit instead of indexed: no message can get lost.
            commit.activities.remove(records.activity_task_key(scheduled[0]))
            return
        by_app: dict[str, list[ActivityRecord]] = {}
        for record in scheduled:
            by_app.setdefault(record["app"], []).append(record)
        for app, group in by_app.items():
            for batch in batches(group, self.fanout_parallelism, self.activity_batch_size):
                message = self.publisher.activity_message(batch, app)
                if message is not None:
                    commit.pushes.setdefault(message[0], []).append(message[1])
                    continue
                if len(batch) == 1:
                    commit.outbox[records.activity_task_key(batch[0])] = records.pack_dispatch(batch[0])
                    continue
                # A broker the script cannot push to: the batch still travels as one message.
                entry: records.ActivityBatch = {"k": "b", "id": batch[0]["id"], "app": app, "recs": batch}
                commit.outbox[f"b:{records.activity_task_key(batch[0])}"] = records.pack_dispatch(entry)

    # -- after the commit: the outbox ---------------------------------------------------------------------
    def publishing(self) -> AbstractContextManager[None]:
        """The publisher's batch context (one producer for many messages)."""
        return self.publisher.batch()

    def publish_outbox(self, instance_id: str, entries: dict[str, bytes]) -> None:
        if not entries:
            return
        with self.publishing():
            for entry in entries.values():
                record = records.unpack_dispatch(entry)
                try:
                    self.publish(record)
                except RETRY_LATER:
                    raise
                except Exception as err:  # noqa: BLE001 - retrying cannot help: fail the call instead
                    self._undeliverable(record, err)
        self.store.ack_outbox(instance_id, entries.keys())

    def _undeliverable(self, rec: records.Dispatch, err: Exception) -> None:
        """A dispatch that can never be published (a sweeper would republish it forever): the call it
        belongs to fails with the error, so the workflow learns of it instead of waiting."""
        what = {"a": "activity", "b": "activities", "c": "child workflow", "p": "parent notification",
                "t": "child terminate"}[rec["k"]]
        message = f"the {what} dispatch of instance {rec['id']!r} could not be published: " \
                  f"{type(err).__name__}: {safe_str(err)}"
        log.error("%s", message, exc_info=err, extra={"instance_id": rec["id"]})
        failure = FailureDetails(message, f"{type(err).__module__}.{type(err).__qualname__}".removeprefix("builtins."))
        if rec["k"] == "c":
            self.deliver_child_result(rec["id"], rec["key"], rec["papp"], False, failure)
        elif rec["k"] in ("a", "b"):
            for attempt in rec["recs"] if rec["k"] == "b" else [rec]:
                now, key = self.clock(), records.activity_task_key(attempt)
                code = self.store.deliver(attempt["id"], TaskFailed(ts=now, seq=attempt["seq"], failure=failure),
                                          token=task_token(key), task_key=key, now=now, failure=True)
                if code == DeliverCode.WAKE:
                    self.wake(attempt["id"], attempt["wapp"])

    def publish(self, rec: records.Dispatch) -> None:
        if rec["k"] == "a":
            self.publisher.send_activity(rec, rec["app"])
        elif rec["k"] == "b":
            self.publisher.send_activities(rec["recs"], rec["app"])
        elif rec["k"] == "c":
            self._start_child(rec)
        elif rec["k"] == "p":
            value = rec["value"] if rec["ok"] else FailureDetails.from_list(rec["value"])
            self.deliver_child_result(rec["id"], rec["key"], rec["app"], rec["ok"], value)
        elif rec["k"] == "t":
            self._terminate_child(rec)

    def _start_child(self, rec: records.ChildStart) -> None:
        now = self.clock()
        started = ExecutionStarted(ts=now, name=rec["name"], input=rec["input"], propagated=rec.get("ph"))
        step = self.publisher.step_message(rec["child"], rec["app"])
        code, _status = self.store.create_instance(
            rec["child"], rec["name"], rec["app"], started, rec["input"], now,
            parent=rec["id"], parent_key=rec["key"], parent_app=rec["papp"], parent_run=rec.get("prun", ""),
            step_message=step,
        )
        if code == CreateCode.DUE and step is None:
            self.publisher.send_step(rec["child"], rec["app"])
        elif code == CreateCode.TAKEN:
            # Someone else's instance is not our child: recursive terminate/purge must not reach it.
            holder = self.store.get_meta(rec["child"])
            if holder is not None and holder.parent != rec["id"]:
                self.store.forget_child(rec["id"], rec["child"])
            failure = FailureDetails(f"child instance id {rec['child']!r} is already taken",
                                     "InstanceAlreadyExistsError")
            self.deliver_child_result(rec["id"], rec["key"], rec["papp"], False, failure)

    def _terminate_child(self, rec: records.ChildTerminate) -> None:
        now = self.clock()
        child = self.store.get_meta(rec["id"])
        if child is None or ("parent" in rec and child.parent != rec["parent"]) \
                or ("prun" in rec and child.parent_run != rec["prun"]):
            return  # gone, or an id that was never this parent run's child
        code = self.store.deliver(rec["id"], ExecutionTerminated(ts=now, output=rec["output"], recursive=True),
                                  token=CONTROL_TOKEN, now=now, control=True)
        if code > DeliverCode.DUPLICATE:  # stored, whoever holds the step: terminate the child now, here
            self.apply_controls(rec["id"])

    def deliver_child_result(self, parent: str, key: str, app: str | None, ok: bool, value: object) -> None:
        now, seq = self.clock(), seq_of(key)
        event = ChildCompleted(ts=now, seq=seq, result=value) if ok else \
            ChildFailed(ts=now, seq=seq, failure=value)  # type: ignore[arg-type]  # a FailureDetails when not ok
        code = self.store.deliver(parent, event, token=task_token(key), task_key=key, now=now, failure=not ok)
        if code == DeliverCode.WAKE:
            self.wake(parent, app)
        elif code == DeliverCode.DUPLICATE:
            log.info("dropped the outcome of a child for call %s of %s: no longer awaited (delivered already, "
                     "or the call belongs to an earlier run of that id)", key, parent, extra={"instance_id": parent})


__all__ = ["Dispatcher"]
