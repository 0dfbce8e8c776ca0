"""Text about user objects that is always safe to make and to store.

User code can hand the engine objects whose ``__str__`` or ``__repr__`` raise, exception messages
with lone surrogates (which cannot be stored as UTF-8) or of many megabytes. Whatever the engine
says about them (a failure's message and stack trace, an error naming a yielded value) goes through
these helpers, so describing a bad object can never itself fail the step that reports it.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_CHARS = 32 * 1024  # a failure's message: its head is kept
MAX_STACK_CHARS = 64 * 1024  # a stack trace: its end (the innermost frames and the error) is kept


def storable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates) escaped as ``\\udXXX``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _describe_failure(kind: str, obj: Any, exc: BaseException) -> str:
    return f"<{type(obj).__qualname__} object: its {kind} raised {type(exc).__name__}>"


def safe_str(obj: Any) -> str:
    """``str(obj)``, or a description of ``obj`` when its ``__str__`` raises or returns no string."""
    try:
        text = str(obj)
    except Exception as exc:  # noqa: BLE001 - describing user objects must never fail
        return _describe_failure("__str__", obj, exc)
    return storable(text) if isinstance(text, str) else f"<{type(obj).__qualname__} object>"


def safe_repr(obj: Any, limit: int = 200) -> str:
    """``repr(obj)`` cut to ``limit`` characters, or a description when ``__repr__`` raises."""
    try:
        text = repr(obj)
    except Exception as exc:  # noqa: BLE001
        return _describe_failure("__repr__", obj, exc)
    if not isinstance(text, str):
        return f"<{type(obj).__qualname__} object>"
    text = storable(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def clip_head(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text) - limit} more characters]"


def clip_tail(text: str, limit: int = MAX_STACK_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"[cut: {len(text) - limit} earlier characters] ...{text[-limit:]}"


__all__ = ["MAX_MESSAGE_CHARS", "MAX_STACK_CHARS", "clip_head", "clip_tail", "safe_repr", "safe_str", "storable"]
