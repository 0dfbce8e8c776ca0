"""Checks the engine applies to what workflow code, activities and Redis hand it.

Payload limits: the client refuses an oversized workflow input or event at the call; values that
workflow and activity code produce are checked here, in the worker, because the pure core does not
know the configured limit (``max_payload_bytes``). An oversized activity result becomes the attempt's
failure (``PayloadTooLargeError``), and an oversized value decided by a step (an activity or child input, the
workflow's output, its custom status, a continue-as-new input) fails the instance with
``PayloadError`` naming the value. Either way nothing oversized is written to Redis.

Timer index entries: the poller fires ``<instance id>|<task key>`` and ``<instance id>|start``; an
entry of any other shape (written by hand, or by a foreign tool) is reported and removed, so it can
never stop the poller from firing the timers behind it.
"""

from __future__ import annotations

from typing import Any

from .. import codec
from ..core.errors import PayloadError
from ..core.history import ChildScheduled, ContinuedAsNew, ExecutionCompleted, TaskScheduled
from ..core.identifiers import is_instance_id
from ..core.replay import StepResult
from ..core.vocabulary import MEMBER_SEPARATOR, START_KEY, Status, is_task_key, split_member


def check_payload(value: Any, what: str, limit: int) -> Any:
    """``value`` checked by the payload rules and ``limit`` (``codec.check_payload``); the converted value."""
    return codec.check_payload(value, what, limit)


def unstorable_decision(workflow: str, outcome: StepResult, limit: int) -> PayloadError | None:
    """The error naming the first value a step decided that breaks a payload rule (over ``limit``
    bytes, mostly: the context checked the others at the call), or None."""
    values: list[tuple[str, Any]] = []
    for action in outcome.actions:
        if isinstance(action, TaskScheduled):
            values.append((f"input of activity {action.name!r} (call #{action.seq})", action.input))
        elif isinstance(action, ChildScheduled):
            values.append((f"input of child workflow {action.name!r} (call #{action.seq})", action.input))
    completion = outcome.completion
    if isinstance(completion, ExecutionCompleted) and completion.status == Status.COMPLETED:
        values.append((f"output of workflow {workflow!r}", completion.result))
    elif isinstance(completion, ContinuedAsNew):
        values.append((f"continue_as_new input of workflow {workflow!r}", completion.input))
    if outcome.custom_status is not None:
        values.append((f"custom status of workflow {workflow!r}", outcome.custom_status))
    for what, value in values:
        try:
            check_payload(value, what, limit)
        except PayloadError as exc:
            return exc
    return None


def parse_timer_member(member: str) -> tuple[str, str] | None:
    """``(instance id, "start" | task key)`` of a well-formed timer index entry, else None."""
    instance_id, key = split_member(member)
    if not member.count(MEMBER_SEPARATOR) or not is_instance_id(instance_id) \
            or not (key == START_KEY or is_task_key(key)):
        return None
    return instance_id, key


__all__ = ["check_payload", "unstorable_decision", "parse_timer_member"]
