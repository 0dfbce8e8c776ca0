"""The wire form of a Celery task message on kombu's Redis transport, built without publishing it.

When the broker is the store's own Redis, a step's commit script pushes the messages of the
activities it schedules onto their queues itself, in the same atomic write that records them: no
outbox entry, no acknowledgement of it, no separate publish round trip, and a fan-out of 1,000
activities is one script call. For that the message must be exactly what ``send_task`` would have
pushed: kombu's JSON envelope (body base64-encoded, ``delivery_info``, a fresh ``delivery_tag``)
around Celery's protocol-2 headers and msgpack body. ``tests/unit/test_envelope.py`` compares it
field by field with a real ``send_task`` so a Celery or kombu upgrade that changes the format fails
the suite instead of the workers.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from typing import Any

import msgpack

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_HOST = socket.gethostname()


def task_message(task: str, args: list[Any], *, task_id: str, queue: str, argsrepr: str,
                 extra_headers: dict[str, str] | None = None, priority: int = 0) -> bytes:
    """The bytes kombu's Redis transport LPUSHes to ``queue`` for ``send_task(task, args, ...)``
    with msgpack serialization, ``priority`` and no result backend; ``extra_headers`` as
    ``send_task(headers=...)`` adds them (the trace context, ``worker/tracing.py``)."""
    body = msgpack.packb((args, {}, _EMBED), use_bin_type=True)
    headers: dict[str, Any] = {
        "lang": "py", "task": task, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
        "root_id": task_id, "parent_id": None, "argsrepr": argsrepr, "kwargsrepr": "{}",
        "origin": f"gen{os.getpid()}@{_HOST}", "ignore_result": None, "replaced_task_nesting": 0,
        "stamped_headers": None, "stamps": {},
    }
    if extra_headers:
        headers.update(extra_headers)
    properties = {
        "correlation_id": task_id, "reply_to": "", "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue}, "priority": priority,
        "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
    }
    envelope = {"body": base64.b64encode(body).decode("ascii"), "content-encoding": "binary",
                "content-type": "application/x-msgpack", "headers": headers, "properties": properties}
    return json.dumps(envelope, separators=(",", ":")).encode()


__all__ = ["task_message"]
