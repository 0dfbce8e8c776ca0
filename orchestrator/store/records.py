"""The store's records: the instance metadata hash and the dispatch records, each known here only.

**Metadata hash** (``<prefix>:{id}:meta``): ``InstanceMeta`` reads it; the ``*_fields`` builders
write the fields a step, a start or a rerun sets (the Lua scripts keep the bookkeeping ones: ``ver``,
``gen``, ``status``, ``updated``, ``wmode`` / ``wleft``, and ``wtok``: the one token of a wait of one
token, '' once it arrived, instead of the wait set). Payload fields (``input``, ``output``,
``custom``, ``failure``) are msgpack (``codec.pack_value``).

**Dispatch records** say what must leave the engine after a step: an activity attempt (the Celery
message's argument as well, so its wire form is a plain dict with short keys: a ``TypedDict``), and
the outbox's child start, parent notification and child terminate. ``pack_dispatch`` /
``unpack_dispatch`` are their outbox form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

from ..codec import pack_value, unpack_value
from ..core.errors import FailureDetails
from ..core.vocabulary import TERMINAL, UNKNOWN_STATUS, task_key

# -- the metadata hash ------------------------------------------------------------------------------
# What a listing reads (payloads, which can be large, stay in Redis).
LIST_FIELDS = ("name", "app", "status", "ver", "gen", "created", "updated", "completed", "failure",
               "parent", "parent_key", "parent_app", "run")
# What a dashboard summary row reads (a failed run's failure: its error in the runs list).
SUMMARY_FIELDS = ("name", "app", "status", "created", "updated", "completed", "parent", "failure")
VERSION_FIELDS = ("ver", "status", "updated")  # what changes on every step (live pages poll it)
DURATION_FIELDS = ("name", "completed", "failure")
FAILURE_FIELD = "failure"
STALLED_FIELD = "stalled"  # set while no pool that received the step registers the recorded version


def failure_of(raw: bytes | None) -> FailureDetails | None:
    """The packed ``failure`` field, decoded (None when absent or unreadable)."""
    if not raw:
        return None
    try:
        return FailureDetails.from_list(unpack_value(raw))
    except (TypeError, ValueError):
        return None


@dataclass
class InstanceMeta:
    """Everything the metadata hash says about an instance."""

    instance_id: str
    name: str
    app: str
    status: str
    version: int
    generation: int
    created: int
    updated: int
    completed: int | None = None
    input: Any = None
    output: Any = None
    custom_status: Any = None
    failure: FailureDetails | None = None
    parent: str | None = None
    parent_key: str | None = None
    parent_app: str | None = None
    workflow_version: str | None = None  # the registered version it runs (None: unversioned)
    rerun_of: str | None = None  # the instance this one reruns (client.rerun_workflow)
    parent_run: str | None = None  # the run id of the parent run that started this child
    run: str = ""  # the run id (core/vocabulary.py); "" for an instance created before run ids existed
    stalled: str | None = None  # the recorded workflow version no pool that tried could run (Dapr's STALLED)
    priority: int | None = None  # its start's priority 0-9 (core/flow.py); None: the default
    flow_wait: str | None = None  # why it waits before its first step (flow control), while it does
    flow_scope: str | None = None  # the flow-control scope whose slot or queue it is in (core/flow.py)
    flow_rate_at: int | None = None  # when its rate-limited start was reserved for (ms)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_hash(cls, instance_id: str, raw: dict[bytes, bytes]) -> InstanceMeta:
        def get(k: str) -> bytes | None:
            return raw.get(k.encode())

        def text(k: str) -> str | None:
            v = get(k)
            return v.decode() if v is not None else None

        failure = unpack_value(get("failure"))
        completed = get("completed")
        return cls(
            instance_id=instance_id,
            name=text("name") or "",
            app=text("app") or "",
            status=text("status") or UNKNOWN_STATUS,
            version=int(get("ver") or 0),
            generation=int(get("gen") or 0),
            created=int(get("created") or 0),
            updated=int(get("updated") or 0),
            completed=int(completed) if completed else None,
            input=unpack_value(get("input")),
            output=unpack_value(get("output")),
            custom_status=unpack_value(get("custom")),
            failure=FailureDetails.from_list(failure) if failure else None,
            parent=text("parent"),
            parent_key=text("parent_key"),
            parent_app=text("parent_app"),
            workflow_version=text("wver"),
            rerun_of=text("rerun_of"),
            parent_run=text("parent_run"),
            run=text("run") or "",
            stalled=text(STALLED_FIELD),
            priority=int(get("prio") or 0) if get("prio") else None,
            flow_wait=text("flow_wait") or None,
            flow_scope=text("flow") or None,
            flow_rate_at=int(get("flow_rt") or 0) or None,
        )

    @property
    def run_identity(self) -> str:
        """What names this run to its children (``prun``): the run id, or for a run without one its
        creation stamp (what such runs were recorded with)."""
        return self.run or str(self.created)

    def task_key(self, seq: int) -> str:
        """The task key of call ``seq`` of this run's current generation."""
        return task_key(self.run, self.generation, seq)

    @classmethod
    def from_fields(cls, instance_id: str, names: tuple[str, ...], values: list[bytes | None]) -> InstanceMeta | None:
        """From an ``HMGET`` of ``names``; None when the instance does not exist."""
        raw = {f.encode(): v for f, v in zip(names, values) if v is not None}
        return cls.from_hash(instance_id, raw) if raw else None


def new_run_id() -> str:
    """A fresh run id: 12 random lowercase hex digits (48 bits; two runs of one id never share one in practice)."""
    return secrets.token_hex(6)


def finished_fields(now: int, *, output: Any = None, failure: FailureDetails | None = None) -> dict[str, Any]:
    """A step that ends the instance: its output (completed, terminated) or its failure."""
    if failure is not None:
        return {"failure": pack_value(failure.to_list()), "completed": now}
    return {"output": pack_value(output), "completed": now}


def custom_status_fields(value: Any) -> dict[str, Any]:
    return {"custom": pack_value(value)}


def input_fields(value: Any) -> dict[str, Any]:
    """A new generation's input (continue-as-new)."""
    return {"input": pack_value(value)}


def workflow_version_fields(version: str) -> dict[str, Any]:
    """The registered version the instance runs (shown as ``WorkflowState.workflow_version``)."""
    return {"wver": version}


def rerun_fields(of: str, from_step: int, version: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"rerun_of": of, "rerun_from": from_step}
    if version is not None:
        fields.update(workflow_version_fields(version))
    return fields


# -- dispatch records ---------------------------------------------------------------------------------
class ActivityRecord(TypedDict):
    """One activity attempt: the argument of its Celery message and the outbox entry when it has none."""

    k: Literal["a"]
    id: str  # the instance
    gen: int  # its generation
    seq: int  # the call
    run: NotRequired[str]  # its run id (records written before run ids existed have none)
    name: str  # the activity
    input: Any
    app: str  # the app whose pool runs it
    wf: str  # the workflow (for logs, and whether its step can run where the activity ran)
    wapp: str  # the app that runs the workflow's steps
    attempt: int
    pr: NotRequired[int]  # its priority 0-9 (core/flow.py; absent: the default)
    rt: NotRequired[int]  # flow control: its rate-limit slot (ms) is reserved (worker/flow.py)
    hb: NotRequired[int]  # heartbeat timeout (ms), when the call set one
    stc: NotRequired[int]  # start-to-close timeout (ms), when the call set one
    hops: NotRequired[int]  # times a pool lacking the activity sent it back to its queue


class ChildStart(TypedDict):
    """Create a child instance (the parent's call ``key``) and run its first step."""

    k: Literal["c"]
    id: str  # the parent
    key: str  # the call's task key in the parent
    child: str
    name: str
    input: Any
    app: str  # the child's app
    papp: str  # the parent's app
    prun: NotRequired[str]  # which run of the parent id made the call (its run id; creation stamp if none)


class ParentNotice(TypedDict):
    """Deliver a finished child's outcome to its parent's call ``key``."""

    k: Literal["p"]
    id: str  # the parent
    key: str
    app: str | None  # the parent's app (None: look it up)
    ok: bool
    value: Any  # the output, or the failure's list form


class ChildTerminate(TypedDict):
    """Terminate a child (recursive terminate); ``parent`` guards against an id reused by another."""

    k: Literal["t"]
    id: str  # the child
    output: Any
    parent: NotRequired[str]  # (records written before it was added have none)
    prun: NotRequired[str]  # the parent run that asks: a replaced parent's late terminate is ignored


class ActivityBatch(TypedDict):
    """Several attempts of one wide fan-out for one app, published as one message (a broker the
    COMMIT script cannot push to: RabbitMQ, a separate Redis); ``id`` is their instance."""

    k: Literal["b"]
    id: str
    app: str
    recs: list[ActivityRecord]


Dispatch = ActivityRecord | ChildStart | ParentNotice | ChildTerminate | ActivityBatch


def activity_record(meta: InstanceMeta, seq: int, name: str, input: Any, app_id: str | None,
                    attempt: int, heartbeat_ms: int | None = None,
                    start_to_close_ms: int | None = None) -> ActivityRecord:
    rec: ActivityRecord = {"k": "a", "id": meta.instance_id, "gen": meta.generation, "seq": seq, "run": meta.run,
                           "name": name, "input": input, "app": app_id or meta.app, "wf": meta.name, "wapp": meta.app,
                           "attempt": attempt}
    if meta.priority is not None:
        rec["pr"] = meta.priority
    if heartbeat_ms:
        rec["hb"] = heartbeat_ms
    if start_to_close_ms:
        rec["stc"] = start_to_close_ms
    return rec


def activity_task_key(record: ActivityRecord) -> str:
    return task_key(record.get("run", ""), record["gen"], record["seq"])


def child_start(meta: InstanceMeta, key: str, child: str, name: str, input: Any, app_id: str | None) -> ChildStart:
    return {"k": "c", "id": meta.instance_id, "key": key, "child": child, "name": name, "input": input,
            "app": app_id or meta.app, "papp": meta.app, "prun": meta.run_identity}


def parent_notice(meta: InstanceMeta, ok: bool, value: Any) -> ParentNotice:
    """For ``meta``'s parent (which it must have): its outcome, a value or a ``FailureDetails``."""
    assert meta.parent is not None and meta.parent_key is not None
    return {"k": "p", "id": meta.parent, "key": meta.parent_key, "app": meta.parent_app, "ok": ok,
            "value": value if ok else value.to_list()}


def child_terminate(child: str, output: Any, parent: InstanceMeta) -> ChildTerminate:
    return {"k": "t", "id": child, "output": output, "parent": parent.instance_id, "prun": parent.run_identity}


def pack_dispatch(record: Dispatch) -> bytes:
    return pack_value(record)


def unpack_dispatch(data: bytes) -> Dispatch:
    record: Dispatch = unpack_value(data)
    return record


# Outbox entry ids: the call's task key for activities and children, these for the others.
PARENT_NOTICE_ID = "parent"


def terminate_id(child: str) -> str:
    return f"term.{child}"


__all__ = ["ActivityBatch", "ActivityRecord", "ChildStart", "ChildTerminate", "DURATION_FIELDS", "Dispatch",
           "FAILURE_FIELD", "InstanceMeta", "failure_of",
           "LIST_FIELDS", "PARENT_NOTICE_ID", "STALLED_FIELD", "ParentNotice", "SUMMARY_FIELDS", "VERSION_FIELDS",
           "activity_record",
           "activity_task_key", "child_start", "child_terminate", "custom_status_fields", "finished_fields",
           "input_fields", "new_run_id", "pack_dispatch", "rerun_fields", "terminate_id", "unpack_dispatch",
           "workflow_version_fields"]
