"""Log output for the command line's processes: plain text, or one JSON object per line.

The engine logs with ``extra=`` fields (``instance_id``, ``workflow``, ``version`` = the step's
history version, ``activity``, ``task_id``, ``attempt``, ...). The JSON formatter writes every such
field as a top-level key, so a log pipeline (Loki, Elasticsearch, CloudWatch) can filter by instance
without parsing messages; the text formatter appends them as ``key=value``. Inside a Celery task
the Celery task id and name are added as ``celery_task_id`` / ``celery_task``.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# (uvicorn's ``color_message`` is the message again with terminal colour codes.)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName",
                                                                              "color_message"}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record, plus the current Celery task when there is one."""
    fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    task = _current_celery_task()
    if task is not None:
        fields.setdefault("celery_task_id", task[0])
        fields.setdefault("celery_task", task[1])
    return fields


def _current_celery_task() -> tuple[str, str] | None:
    celery_state = sys.modules.get("celery._state")
    if celery_state is None:
        return None
    task = celery_state.get_current_task()
    request = getattr(task, "request", None) if task is not None else None
    task_id = getattr(request, "id", None)
    return (task_id, task.name) if task_id else None


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <extra fields>..., "exc_info"?}``, one line each."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        out.update(record_fields(record))
        if record.exc_info:
            out["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        if fields:
            extras = " ".join(f"{k}={v}" for k, v in fields.items())
            head, sep, tail = line.partition("\n")  # keep a traceback below the fields
            line = f"{head} {extras}{sep}{tail}"
        return line


def configure_logging(fmt: str = "text", level: str | int = "INFO") -> None:
    """Send the root logger to stderr in ``fmt``. Celery leaves a root logger that already has a
    handler alone (it only adds its own when there is none), so this survives ``worker_main``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; expected one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level if isinstance(level, int) else level.upper())
    # Python's warnings (Celery's "running as root", deprecations) as log records: JSON lines too.
    logging.captureWarnings(fmt == "json")


__all__ = ["FORMATS", "JsonFormatter", "TextFormatter", "configure_logging", "record_fields"]
