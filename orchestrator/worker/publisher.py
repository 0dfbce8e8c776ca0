"""How messages leave the engine: the ``Publisher`` protocol, with its optional capabilities declared.

``send_step`` / ``send_activity`` publish; ``step_message`` / ``activity_message`` hand the store the
finished message bytes for its scripts to push themselves (when the broker is the store's Redis:
worker/envelope.py), or None when the publisher cannot (then the engine publishes, through the
outbox for activities); ``batch()`` holds one connection for many sends. ``CeleryPublisher``
(worker/celery_app.py) implements all of it; a publisher that implements only the two sends (a
test's, say) is completed by ``full_publisher`` with the answers "cannot" and "no batching".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, runtime_checkable

from ..store.records import ActivityRecord


class SendingPublisher(Protocol):
    """The least a publisher does."""

    def send_step(self, instance_id: str, app_id: str) -> None: ...

    def send_activity(self, record: ActivityRecord, app_id: str) -> None: ...


@runtime_checkable
class Publisher(SendingPublisher, Protocol):
    def step_message(self, instance_id: str, app_id: str, priority: int | None = None) -> tuple[str, bytes] | None:
        """(queue key, message bytes) of ``send_step`` for a script to push, or None: publish it.
        ``priority`` (0 first .. 9 last; None: the default, core/flow.py) picks the queue's list."""
        ...

    def send_priority_step(self, instance_id: str, app_id: str, priority: int | None) -> None:
        """``send_step`` at ``priority`` (a publisher without priorities sends it plainly)."""
        ...

    def activity_message(self, records: list[ActivityRecord], app_id: str) -> tuple[str, bytes] | None:
        """(queue key, message bytes) of one message running ``records``, or None: use the outbox."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """One producer for the sends made inside it."""
        ...

    def send_activities(self, records: list[ActivityRecord], app_id: str) -> None:
        """One message running ``records`` (a wide fan-out's batch, on a broker scripts cannot push to)."""
        ...


class _Completed:
    """A sending-only publisher with the optional capabilities answered "cannot"."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # the wrapped publisher's own attributes stay reachable

    def send_step(self, instance_id: str, app_id: str) -> None:
        self.inner.send_step(instance_id, app_id)

    def send_activity(self, record: ActivityRecord, app_id: str) -> None:
        self.inner.send_activity(record, app_id)

    def step_message(self, instance_id: str, app_id: str, priority: int | None = None) -> tuple[str, bytes] | None:
        return None

    def send_activities(self, records: list[ActivityRecord], app_id: str) -> None:
        for record in records:
            self.inner.send_activity(record, app_id)

    def send_priority_step(self, instance_id: str, app_id: str, priority: int | None) -> None:
        self.inner.send_step(instance_id, app_id)

    def activity_message(self, records: list[ActivityRecord], app_id: str) -> tuple[str, bytes] | None:
        return None

    @contextmanager
    def batch(self) -> Iterator[None]:
        yield


def full_publisher(publisher: Any) -> Publisher:
    """``publisher`` itself when it implements the whole protocol, else it completed."""
    return publisher if isinstance(publisher, Publisher) else _Completed(publisher)


__all__ = ["Publisher", "SendingPublisher", "full_publisher"]
