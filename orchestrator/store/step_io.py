"""What one step reads from the store (``Snapshot``, its ``InboxEntry``s) and writes to it
(``Commit``, answered by a ``CommitResult``), and what a rerun's new instance is seeded with
(``Seed``): plain records the worker builds and ``RedisStore`` turns into script arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.history import HistoryEvent
from ..core.vocabulary import WAIT_ANY
from .records import ActivityRecord, InstanceMeta


@dataclass
class InboxEntry:
    entry_id: str
    token: str
    event: HistoryEvent


@dataclass
class Snapshot:
    meta: InstanceMeta
    history: list[HistoryEvent]  # all of it, or only what was committed after ``after_version``
    inbox: list[InboxEntry]
    after_version: int | None = None


@dataclass
class Commit:
    """One step's writes, applied by the COMMIT script iff the history version is still ``version``."""

    version: int
    now: int
    status: str
    consumed: list[str] = field(default_factory=list)
    events: list[HistoryEvent] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    drop_fields: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    outbox: dict[str, bytes] = field(default_factory=dict)
    timers: list[tuple[int, str]] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    wait_mode: str = WAIT_ANY
    wait_tokens: list[str] = field(default_factory=list)
    keep_wait: bool = False
    reset: bool = False
    inbox_add: list[tuple[str, bytes]] = field(default_factory=list)
    drop_tasks: list[str] = field(default_factory=list)  # task keys no longer awaited (timed out, disarmed)
    activities: list[str] = field(default_factory=list)  # task keys of the activity attempts dispatched
    pushes: dict[str, list[bytes]] = field(default_factory=dict)  # queue key -> task messages to LPUSH
    eager: ActivityRecord | None = None  # the activity attempt run in this process after the commit
    taker: str = ""  # the process that runs ``eager``: claimed for it in the commit ('' without liveness)
    completed: str = ""  # the task key of an activity result the step consumed without the inbox
    run: str = ""  # with ``completed``: the run and generation the step was decided for (checked)
    gen: int = 0
    claimer: str = ""  # the process committing: its claim of the step is dropped (worker/liveness.py)
    # The instance's name and the status the step read it in (its snapshot's): they name the index
    # keys a status change moves it between. Unset, the store finds them (one more round trip).
    name: str | None = None
    old_status: str | None = None


@dataclass
class Seed:
    """What a rerun's new instance is created holding (see ``RedisStore.create_instance``)."""

    history: list[HistoryEvent]
    inbox: list[HistoryEvent]
    timers: list[tuple[int, int]]  # (fire at ms, call seq) re-armed in the new run's first generation
    fields: dict[str, Any] = field(default_factory=dict)  # extra metadata fields


@dataclass
class CommitResult:
    ok: bool
    version: int
    rerun: bool = False
    gone: bool = False
    duplicate: bool = False  # the result the commit carried (``Commit.completed``) was not awaited any more
