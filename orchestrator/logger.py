"""``LoggerOptions``: Dapr's ``dapr.ext.workflow.logger.LoggerOptions`` (level, handler, formatter).

``WorkflowRuntime(logger_options=...)`` and ``DaprWorkflowClient(logger_options=...)`` apply them to
the ``orchestrator`` loggers those objects write to, as Dapr's do to theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any


@dataclass
class LoggerOptions:
    log_level: str | int | None = None
    log_handler: logging.Handler | None = None
    log_formatter: logging.Formatter | None = None

    def get_options(self) -> LoggerOptions:  # Dapr's Logger calls it; kept for code that does too
        return self


def apply_logger_options(logger: logging.Logger, options: Any) -> None:
    """Set ``logger``'s level, handler and formatter from Dapr's ``LoggerOptions`` (or ours: the
    same three attributes). None leaves the logger as logging's configuration made it."""
    if options is None:
        return
    level = getattr(options, "log_level", None)
    if level is not None:
        logger.setLevel(level.upper() if isinstance(level, str) else level)
    handler = getattr(options, "log_handler", None)
    formatter = getattr(options, "log_formatter", None)
    if handler is not None:
        if formatter is not None:
            handler.setFormatter(formatter)
        if handler not in logger.handlers:
            logger.addHandler(handler)


def setting_options(options: dict[str, Any], owner: str) -> dict[str, Any]:
    """Keyword options that name settings (``Settings`` fields); ``TypeError`` naming any other, so
    a misspelt option fails at the call instead of being ignored."""
    from .settings import Settings

    known = set(Settings.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"{owner}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(repr(u) for u in unknown)}")
    return options


__all__ = ["LoggerOptions", "apply_logger_options", "setting_options"]
