"""Flow control, the pure part: priorities, and the limits declared for a workflow type or an activity.

**Priorities** 0-9: 0 runs first, 9 last; ``DEFAULT_PRIORITY`` is 0, as in Celery on Redis and in
DBOS: work without a priority is the most urgent, and a priority of 1-9 lets other work go first
(give routine work 5 and urgent work 0 to have both ways). A workflow
start's priority is its instance's, carried by its step messages and inherited by its activities
(an activity's own ``priority`` overrides it). The engine's queues honour it: kombu's Redis
transport keeps one list per priority and every consumer pops the lowest number first
(``priority_list``). Messages already queued are not reordered by a later, more urgent one:
priority decides which queued message a free worker takes next.

**Limits** (``FlowPolicy``), declared where the workflow or activity is registered, because a
concurrency key is computed from the input by the user's function, which only the pools hold:

* ``concurrency``: at most N running at once across every pool (a workflow runs from its first
  step until it finishes; an activity for the time of one attempt);
* ``key_concurrency`` with ``concurrency_key`` (``lambda order: order["customer"]``): at most N
  per key; waiting work is granted round-robin between keys, oldest first within a key;
* ``rate`` per ``per`` seconds: a token bucket shared by every pool (per key too with
  ``rate_per_key``); work over it is delayed to its slot, never failed.

Over-limit work waits durably in the store (worker/flow.py, store/flow.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRIORITIES = range(10)
DEFAULT_PRIORITY = 0
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: queue name, separator, priority step
MAX_KEY_LENGTH = 200


def validate_priority(value: object, what: str = "priority") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
        raise ValueError(f"{what} must be an integer from 0 (first) to 9 (last), got {value!r}")
    return value


def priority_list(queue: str, priority: int | None) -> str:
    """The Redis list kombu's Redis transport keeps for ``queue``'s messages of ``priority``
    (with the transport option ``priority_steps`` 0..9: worker/celery_app.py)."""
    p = DEFAULT_PRIORITY if priority is None else priority
    return queue if p == 0 else f"{queue}{PRIORITY_SEPARATOR}{p}"


def priority_lists(queue: str) -> list[str]:
    """Every list of ``queue``, most urgent first (queue lengths add them up)."""
    return [priority_list(queue, p) for p in PRIORITIES]


@dataclass(frozen=True)
class FlowPolicy:
    """The limits of one workflow type or activity name (see the module docstring)."""

    concurrency: int | None = None
    concurrency_key: Callable[[Any], Any] | None = None
    key_concurrency: int | None = None
    rate: int | None = None
    per: float = 1.0
    rate_per_key: bool = False
    priority: int | None = None

    def __post_init__(self) -> None:
        for what, value in (("concurrency", self.concurrency), ("key_concurrency", self.key_concurrency),
                            ("rate", self.rate)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{what} must be a positive integer or None, got {value!r}")
        if self.key_concurrency is not None and self.concurrency_key is None:
            raise ValueError("key_concurrency needs a concurrency_key (a function of the input)")
        if self.rate_per_key and self.concurrency_key is None:
            raise ValueError("rate_per_key needs a concurrency_key (a function of the input)")
        if self.concurrency_key is not None and not callable(self.concurrency_key):
            raise ValueError(f"concurrency_key must be a function of the input, got {self.concurrency_key!r}")
        if isinstance(self.per, bool) or not isinstance(self.per, (int, float)) or not self.per > 0:
            raise ValueError(f"per must be a positive number of seconds, got {self.per!r}")
        if self.priority is not None:
            validate_priority(self.priority)

    @property
    def limits_concurrency(self) -> bool:
        return self.concurrency is not None or self.key_concurrency is not None

    def key_of(self, value: Any) -> str:
        """The concurrency key of an input, as text ("" without a key function)."""
        if self.concurrency_key is None:
            return ""
        key = str(self.concurrency_key(value))
        if len(key) > MAX_KEY_LENGTH:
            raise ValueError(f"concurrency key {key[:40]!r}... is over {MAX_KEY_LENGTH} characters")
        return key

    @property
    def period_ms(self) -> int:
        return max(1, int(self.per * 1000))


def flow_policy(**options: Any) -> FlowPolicy | None:
    """The policy of a registration's flow options, or None when it has none."""
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    return FlowPolicy(**given) if given else None


def workflow_scope(name: str) -> str:
    return f"w:{name}"


def activity_scope(name: str) -> str:
    return f"a:{name}"


__all__ = ["DEFAULT_PRIORITY", "FlowPolicy", "PRIORITIES", "activity_scope", "flow_policy", "priority_list",
           "priority_lists", "validate_priority", "workflow_scope"]
