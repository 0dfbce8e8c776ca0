"""The words the engine's parts say to each other, spelled once: statuses, wake tokens, member formats, queues.

Every layer (the Lua scripts included: ``store/scripts.py`` writes these into each script's header)
takes them from here, so a status or a token format cannot drift between the writer and a reader.

* **Statuses** of an instance, as stored in its metadata hash and its status indexes. ``TERMINAL``
  are the final ones: nothing changes an instance in them except purge (or a replacing start).
* **Wake tokens** name what a blocked workflow waits for; a delivery carries one. ``t:<seq>`` is the
  result of call (activity, child, timer) ``seq``; ``e:<name>`` an external event (names match
  case-insensitively); ``x`` a control or start event, which always wakes the instance.
* **Task keys** ``<gen>.<seq>`` identify call ``seq`` of generation ``gen`` (continue-as-new bumps
  the generation), so a late result of an earlier generation can never resolve a newer call.
  **Members** ``<instance id>|<task key>`` name a call in the store's global indexes (timers,
  activities); ``<instance id>|start`` is a scheduled start.
* **Queues**: each app id has one Celery queue, ``orchestrator.<app id>``, for steps and activities.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """An instance's status; a ``str``, so it is stored and compared as its name."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    PENDING = "PENDING"
    SUSPENDED = "SUSPENDED"


STATUSES: tuple[Status, ...] = tuple(Status)
TERMINAL: frozenset[str] = frozenset({Status.COMPLETED, Status.FAILED, Status.TERMINATED})
# The runs that ended on their own (not terminated): what success rates and durations measure.
SELF_FINISHED: tuple[Status, ...] = (Status.COMPLETED, Status.FAILED)
# Shown where there is no status to read: a hash without one, a child not created yet, or purged;
# and how a history that ended by continuing as new is shown (the instance itself stays RUNNING).
UNKNOWN_STATUS, NOT_CREATED, PURGED = "UNKNOWN", "NOT_CREATED", "PURGED"
CONTINUED_AS_NEW = "CONTINUED_AS_NEW"

# How a blocked workflow waits: woken by ``any`` one of its tokens, or only once ``all`` were delivered.
WAIT_ANY, WAIT_ALL = "any", "all"

# -- wake tokens ----------------------------------------------------------------------------------
CONTROL_TOKEN = "x"
TASK_TOKEN_PREFIX, EVENT_TOKEN_PREFIX = "t:", "e:"


def task_token(seq: int) -> str:
    return f"{TASK_TOKEN_PREFIX}{seq}"


def event_key(name: str) -> str:
    """The matching key of an external event name (case-insensitive)."""
    return name.casefold()


def event_token(name: str) -> str:
    return f"{EVENT_TOKEN_PREFIX}{event_key(name)}"


# -- task keys and index members ----------------------------------------------------------------
START_KEY = "start"  # the task key of a scheduled start in the timer index
MEMBER_SEPARATOR = "|"
EAGER_MARK = "e"  # the task hash's value for an activity committed for eager execution


def task_key(generation: int, seq: int) -> str:
    return f"{generation}.{seq}"


def seq_of(key: str) -> int:
    """The call number of a task key ``<gen>.<seq>``."""
    return int(key.rpartition(".")[2])


def generation_of(key: str) -> str:
    return key.partition(".")[0]


def member(instance_id: str, key: str) -> str:
    """The index member ``<instance id>|<task key>`` (or ``<instance id>|start``)."""
    return f"{instance_id}{MEMBER_SEPARATOR}{key}"


def split_member(value: str) -> tuple[str, str]:
    """``(instance id, task key)`` of an index member (instance ids never contain ``|``)."""
    instance_id, _, key = value.rpartition(MEMBER_SEPARATOR)
    return instance_id, key


# -- queues ---------------------------------------------------------------------------------------
QUEUE_PREFIX = "orchestrator."


def queue_name(app_id: str) -> str:
    return f"{QUEUE_PREFIX}{app_id}"


__all__ = [
    "CONTINUED_AS_NEW", "CONTROL_TOKEN", "EAGER_MARK", "EVENT_TOKEN_PREFIX", "MEMBER_SEPARATOR", "NOT_CREATED",
    "PURGED",
    "QUEUE_PREFIX", "SELF_FINISHED", "START_KEY", "STATUSES", "Status", "TASK_TOKEN_PREFIX", "TERMINAL",
    "UNKNOWN_STATUS", "WAIT_ALL", "WAIT_ANY", "event_key", "event_token", "generation_of", "member", "queue_name",
    "seq_of", "split_member", "task_key", "task_token",
]
