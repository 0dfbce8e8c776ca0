"""JSON views of instances and history events for the browser, with large payloads clipped.

A payload (input, output, custom status, event data, activity result) is shown as its JSON text;
beyond ``CLIP_CHARS`` characters only the beginning is sent, with the full size and
``truncated: true``, and the page fetches the whole value on demand. So a run whose activities
return megabytes still opens instantly. Escaping is the browser's job (text nodes only).
"""

from __future__ import annotations

import json
from typing import Any

from ..client import InstanceMeta
from ..core.errors import FailureDetails
from ..core.history import HistoryEvent, event_to_dict

CLIP_CHARS = 4000
PAYLOAD_FIELDS = ("input", "result", "data", "output", "failure")
INSTANCE_PAYLOADS = ("input", "output", "custom_status", "failure")


def to_json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def clip(value: Any, limit: int = CLIP_CHARS) -> dict[str, Any] | None:
    """``{"text", "size", "truncated"}`` for a payload, None for an absent one."""
    if value is None:
        return None
    text = to_json_text(value)
    return {"text": text[:limit], "size": len(text), "truncated": len(text) > limit}


def clip_text(text: str, limit: int = CLIP_CHARS) -> dict[str, Any]:
    """Like ``clip`` for text shown verbatim (a stack trace), not as JSON."""
    return {"text": text[:limit], "size": len(text), "truncated": len(text) > limit}


def failure_dict(failure: FailureDetails | None) -> dict[str, Any] | None:
    return failure.to_dict() if failure is not None else None


def instance_payload(meta: InstanceMeta, field: str) -> Any:
    if field not in INSTANCE_PAYLOADS:
        raise ValueError(f"unknown payload {field!r}; expected one of {', '.join(INSTANCE_PAYLOADS)}")
    if field == "failure":
        return failure_dict(meta.failure)
    return getattr(meta, field)


def instance_view(meta: InstanceMeta) -> dict[str, Any]:
    failure = meta.failure
    return {
        "instance_id": meta.instance_id,
        "name": meta.name,
        "app_id": meta.app,
        "status": meta.status,
        "version": meta.version,
        "generation": meta.generation,
        "created": meta.created,
        "updated": meta.updated,
        "completed": meta.completed,
        "parent": meta.parent,
        "rerun_of": meta.rerun_of,
        "input": clip(meta.input),
        "output": clip(meta.output),
        "custom_status": clip(meta.custom_status),
        "queued": meta.flow_wait,  # why a PENDING run waits (flow control: a concurrency slot, a rate limit)
        "failure": None if failure is None else {
            "error_type": failure.error_type,
            "message": failure.message,
            "stack_trace": clip_text(failure.stack_trace, CLIP_CHARS * 4) if failure.stack_trace else None,
        },
    }


def call_names(events: list[HistoryEvent]) -> dict[int, str]:
    """seq -> the name of the activity or child workflow (or "timer") that call is."""
    names: dict[int, str] = {}
    for event in events:
        seq = getattr(event, "seq", None)
        if seq is not None and seq not in names and event.kind in ("TaskScheduled", "ChildScheduled", "TimerCreated"):
            names[seq] = getattr(event, "name", None) or ("retry backoff" if getattr(event, "purpose", "") else "timer")
    return names


def event_view(index: int, step: int, event: HistoryEvent, names: dict[int, str] | None = None) -> dict[str, Any]:
    """One history event with its payload fields clipped; ``index`` is its position in history;
    a result names the call it answers (``call``, from ``names``)."""
    raw = event_to_dict(event)
    out: dict[str, Any] = {"index": index, "step": step, "kind": raw.pop("kind"), "ts": raw.pop("ts")}
    seq = raw.get("seq")
    if names is not None and seq is not None and "name" not in raw:
        out["call"] = names.get(seq)
    payloads: dict[str, Any] = {}
    for key in PAYLOAD_FIELDS:
        if key in raw:
            value = raw.pop(key)
            if key == "failure" and isinstance(value, dict):
                # A failure reads best as its type and message, and its stack as plain text.
                raw["error_type"], raw["message"] = value.get("error_type"), value.get("message")
                if value.get("stack_trace"):
                    payloads["stack_trace"] = clip_text(value["stack_trace"], CLIP_CHARS * 4)
            elif value is not None:
                payloads[key] = clip(value)
    out["fields"] = raw
    out["payloads"] = payloads
    return out


def event_full(index: int, event: HistoryEvent) -> dict[str, Any]:
    return {"index": index, **event_to_dict(event)}


def step_numbers(events: list[HistoryEvent]) -> list[int]:
    """The orchestration step (0-based) each event belongs to; ``StepStarted`` opens a step."""
    out, step = [], -1
    for event in events:
        if event.kind == "StepStarted" or step < 0:
            step += 1
        out.append(step)
    return out


__all__ = ["call_names", "clip", "instance_view", "instance_payload", "event_view", "event_full", "step_numbers",
           "CLIP_CHARS"]
