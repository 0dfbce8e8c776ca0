"""The words the engine's parts say to each other, spelled once: statuses, wake tokens, member formats, queues.

Every layer (the Lua scripts included: ``store/scripts.py`` writes these into each script's header)
takes them from here, so a status or a token format cannot drift between the writer and a reader.

* **Statuses** of an instance, as stored in its metadata hash and its status indexes. ``TERMINAL``
  are the final ones: nothing changes an instance in them except purge (or a replacing start).
* **Runs**: every start of an instance id (a new instance, a ``reuse_id_policy="replace"``, a child
  started again, a rerun) is a new *run* with its own run id (12 lowercase hex digits, made by the
  store), kept across continue-as-new. Results belong to a run, as in Temporal.
* **Task keys** ``<run>.<gen>.<seq>`` identify call ``seq`` of generation ``gen`` (continue-as-new
  bumps it) of run ``run``, so a late result of a terminated or replaced run, or of an earlier
  generation, can never resolve a call of a newer one: the store drops a delivery whose task key
  the instance does not await. Instances created before run ids existed have run ``""`` and keep
  their old keys ``<gen>.<seq>`` (and tokens ``t:<seq>``) until they finish: in-flight data of an
  upgrade stays readable.
* **Wake tokens** name what a blocked workflow waits for; a delivery carries one. ``t:<task key>``
  is the result of that call (activity, child, timer), so an inbox entry says which run and
  generation it belongs to; ``e:<name>`` an external event (names match case-insensitively); ``x`` a
  control or start event, which always wakes the instance.
* **Members** ``<instance id>|<task key>`` name a call in the store's global indexes (timers,
  activities); ``<instance id>|start`` is a scheduled start.
* **Queues**: each app id has one Celery queue, ``orchestrator.<app id>``, for steps and activities.
"""

from __future__ import annotations

import re
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


def task_token(key: str) -> str:
    """The wake token of the call ``key`` (a task key): ``t:<task key>``, or ``t:<seq>`` for a key of a
    run without id (created before run ids existed, whose waits were written that way)."""
    return f"{TASK_TOKEN_PREFIX}{key}" if run_of(key) else f"{TASK_TOKEN_PREFIX}{seq_of(key)}"


def token_task_key(token: str) -> str | None:
    """The task key a wake token names (None: an event, a control, or a token of a run without id)."""
    if not token.startswith(TASK_TOKEN_PREFIX):
        return None
    key = token[len(TASK_TOKEN_PREFIX):]
    return key if is_task_key(key) and run_of(key) else None


def event_key(name: str) -> str:
    """The matching key of an external event name (case-insensitive)."""
    return name.casefold()


def event_token(name: str) -> str:
    return f"{EVENT_TOKEN_PREFIX}{event_key(name)}"


# -- task keys and index members ----------------------------------------------------------------
START_KEY = "start"  # the task key of a scheduled start in the timer index
MEMBER_SEPARATOR = "|"
EAGER_MARK = "e"  # the task hash's value for an activity committed for eager execution
STEP_CLAIM = "step"  # the claim of an instance's step in the claims index (``<id>|step``)
LOST_SUFFIX = "#lost"  # a claim's field + this: how often its work's process died holding it (same hash)


RUN_ID_PATTERN = re.compile(r"[0-9a-f]{1,32}")
# ``<run>.<gen>.<seq>``, or ``<gen>.<seq>`` (a run without id); ASCII digits only (``\d`` would take
# any Unicode digit, which ``int`` then reads), matched whole (``fullmatch``).
TASK_KEY_PATTERN = re.compile(r"(?:[0-9a-f]{1,32}\.)?[0-9]{1,19}\.[0-9]{1,19}")


def task_key(run: str, generation: int, seq: int) -> str:
    """``<run>.<gen>.<seq>``: call ``seq`` of generation ``generation`` of run ``run`` (``<gen>.<seq>``
    when ``run`` is ``""``: an instance created before run ids existed)."""
    return f"{run}.{generation}.{seq}" if run else f"{generation}.{seq}"


def is_task_key(key: str) -> bool:
    return TASK_KEY_PATTERN.fullmatch(key) is not None


def seq_of(key: str) -> int:
    """The call number of a task key."""
    return int(key.rpartition(".")[2])


def generation_of(key: str) -> str:
    """The generation of a task key, as text."""
    parts = key.split(".")
    return parts[-2] if len(parts) >= 2 else ""


def run_of(key: str) -> str:
    """The run id of a task key (``""`` for a key of a run without id)."""
    parts = key.split(".")
    return parts[0] if len(parts) == 3 else ""


def belongs_to(key: str, run: str, generation: int) -> bool:
    """Is ``key`` a call of that run and generation?"""
    return run_of(key) == run and generation_of(key) == str(generation)


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
    "CONTINUED_AS_NEW", "CONTROL_TOKEN", "EAGER_MARK", "EVENT_TOKEN_PREFIX", "LOST_SUFFIX", "MEMBER_SEPARATOR",
    "NOT_CREATED",
    "PURGED", "QUEUE_PREFIX", "RUN_ID_PATTERN", "SELF_FINISHED", "START_KEY", "STEP_CLAIM", "STATUSES", "Status",
    "TASK_KEY_PATTERN", "TASK_TOKEN_PREFIX", "TERMINAL", "UNKNOWN_STATUS", "WAIT_ALL", "WAIT_ANY", "belongs_to",
    "event_key", "event_token", "generation_of", "is_task_key", "member", "queue_name", "run_of", "seq_of",
    "split_member", "task_key", "task_token", "token_task_key",
]
