"""The codec: how history events, payloads and script arguments become bytes (msgpack), and back.

The core defines the events as typed records (``core.history.to_record`` / ``from_record``) and
knows nothing of their encoding; this layer packs them, and every layer outside the core (store,
worker, client) encodes and decodes through it, so the wire format has one owner.
``tests/unit/test_golden_bytes.py`` pins the exact bytes of every event kind.

* an event is the msgpack array of its record; a history batch (one stream entry) the array of them;
* a payload (input, output, custom status, a failure's list form) is msgpack with the bin type;
* a script argument blob is msgpack *without* the bin type: Redis's ``cmsgpack`` cannot read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgpack

from .core.errors import PayloadTooLargeError
from .core.history import HistoryEvent, HistoryFormatError, from_record, to_record
from .core.payload import to_json_compatible


def pack_events(events: Iterable[HistoryEvent]) -> bytes:
    return bytes(msgpack.packb([to_record(e) for e in events], use_bin_type=True))


def unpack_events(data: bytes) -> list[HistoryEvent]:
    return [from_record(r) for r in _unpack_list(data, "history batch")]


def pack_event(event: HistoryEvent) -> bytes:
    return bytes(msgpack.packb(to_record(event), use_bin_type=True))


def unpack_event(data: bytes) -> HistoryEvent:
    return from_record(_unpack_list(data, "event"))


def _unpack_list(data: bytes, what: str) -> list[Any]:
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise HistoryFormatError(f"undecodable {what}: {exc}") from exc
    if not isinstance(value, list):
        raise HistoryFormatError(f"{what} is {type(value).__name__}, expected a list")
    return value


def pack_value(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def unpack_value(data: bytes | None) -> Any:
    return None if data is None else msgpack.unpackb(data, raw=False, strict_map_key=False)


def check_payload(value: Any, what: str, limit: int) -> Any:
    """The payload validator every boundary uses (client, worker, and through the client the HTTP API
    and the CLI): ``value`` converted and checked by ``core.payload``'s rules, then its packed size
    against ``limit`` (the setting ``max_payload_bytes``). Returns the converted value."""
    payload = to_json_compatible(value, what)
    size = len(pack_value(payload))
    if size > limit:
        raise PayloadTooLargeError(f"{what} is {size} bytes, over the limit of {limit} (setting max_payload_bytes)")
    return payload


def event_fingerprint(event: HistoryEvent) -> str:
    """What an idempotency key is remembered with, and a later raise with that key checked against:
    the event's name as events are matched (case-insensitively). A retry with the same key and name
    is the same raise (its data is not compared: the first one stored wins); another name is refused."""
    return f"{event.kind}:{str(getattr(event, 'name', '')).casefold()}"


def pack_script_args(blob: Any) -> bytes:
    """A script's argument blob. Redis's cmsgpack cannot read the msgpack bin type: bytes travel as
    (binary-safe) str."""
    return bytes(msgpack.packb(blob, use_bin_type=False))


__all__ = ["check_payload", "event_fingerprint", "pack_event", "pack_events", "pack_script_args", "pack_value",
           "unpack_event", "unpack_events", "unpack_value"]
