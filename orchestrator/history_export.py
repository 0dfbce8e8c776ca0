"""The exported-history format: one instance's metadata and history as a JSON document.

Written by ``client.export_history`` / ``orchestrator history ID --export FILE`` and read by
``orchestrator.testing.Replayer``, so histories recorded in production can be replayed against new
code in CI before it is deployed. The document is versioned so a reader can refuse what it does not
understand instead of guessing::

    {"format": "orchestrator.history", "format_version": 1, "exported_at": "2025-...Z",
     "instance": {"instance_id", "name", "workflow_version", "generation", "runtime_status", "input",
                  "output", "failure_details", "created_at", ...},
     "events": [{"kind": "StepStarted", "ts": 1700000000000}, {"kind": "ExecutionStarted", ...}, ...]}

Events are ``event_to_dict`` dicts (``event_from_dict`` reads them back); times are integer
milliseconds since the Unix epoch, as in the store. Only the current generation's history exists
(``continue_as_new`` starts a fresh one), and that is what is exported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .core.history import ExecutionStarted, HistoryEvent, HistoryFormatError, event_from_dict, event_to_dict
from .core.vocabulary import UNKNOWN_STATUS

FORMAT = "orchestrator.history"
FORMAT_VERSION = 1


def export_document(instance: dict[str, Any], events: Sequence[HistoryEvent]) -> dict[str, Any]:
    """The JSON-ready document for an instance (``instance``: its metadata) and its history."""
    started = next((e for e in events if isinstance(e, ExecutionStarted)), None)
    info = dict(instance)
    info.setdefault("workflow_version", started.version if started is not None else None)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "instance": info,
        "events": [event_to_dict(e) for e in events],
    }


@dataclass
class ExportedHistory:
    """A decoded export: what replay needs, plus where it came from (for reports)."""

    instance_id: str
    name: str
    version: str | None
    generation: int
    status: str
    events: list[HistoryEvent]
    instance: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def load_document(doc: Any, source: str = "") -> ExportedHistory:
    """Validate and decode an export; errors name the file and what is wrong with it."""
    where = f"{source}: " if source else ""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HistoryFormatError(f"{where}not an exported history (expected \"format\": \"{FORMAT}\")")
    if doc.get("format_version") != FORMAT_VERSION:
        raise HistoryFormatError(f"{where}format_version {doc.get('format_version')!r} is not supported "
                                 f"(this version reads {FORMAT_VERSION})")
    instance, raw_events = doc.get("instance"), doc.get("events")
    if not isinstance(instance, dict) or not isinstance(raw_events, list):
        raise HistoryFormatError(f"{where}\"instance\" must be an object and \"events\" a list")
    events = []
    for index, raw in enumerate(raw_events):
        try:
            events.append(event_from_dict(raw))
        except HistoryFormatError as exc:
            raise HistoryFormatError(f"{where}event #{index + 1}: {exc}") from None
    started = next((e for e in events if isinstance(e, ExecutionStarted)), None)
    name = instance.get("name") or (started.name if started else None)
    if not isinstance(name, str) or not name:
        raise HistoryFormatError(f"{where}the instance has no workflow name")
    version = started.version if started is not None else instance.get("workflow_version")
    return ExportedHistory(
        instance_id=str(instance.get("instance_id") or "exported"), name=name, version=version,
        generation=int(instance.get("generation") or 0), status=str(instance.get("runtime_status") or UNKNOWN_STATUS),
        events=events, instance=instance, source=source)


def read_file(path: str | Path) -> ExportedHistory:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return load_document(doc, str(path))


def write_file(doc: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


__all__ = ["FORMAT", "FORMAT_VERSION", "ExportedHistory", "export_document", "load_document", "read_file",
           "write_file"]
