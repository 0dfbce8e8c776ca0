"""The names a worker pool serves: workflow and activity functions by registered name."""

from __future__ import annotations

from typing import Any, Callable

from .context import NAME_ATTRIBUTE, registered_name


class Registry:
    def __init__(self) -> None:
        self.workflows: dict[str, Callable[..., Any]] = {}
        self.activities: dict[str, Callable[..., Any]] = {}

    def add_workflow(self, fn: Callable[..., Any], name: str | None = None) -> str:
        return self._add(self.workflows, "workflow", fn, name)

    def add_activity(self, fn: Callable[..., Any], name: str | None = None) -> str:
        return self._add(self.activities, "activity", fn, name)

    @staticmethod
    def _add(table: dict[str, Callable[..., Any]], what: str, fn: Callable[..., Any], name: str | None) -> str:
        if not callable(fn):
            raise TypeError(f"a {what} must be a function, got {type(fn).__name__}")
        key = name or registered_name(fn)
        if not isinstance(key, str) or not key or "|" in key:
            raise ValueError(f"invalid {what} name {key!r}")
        existing = table.get(key)
        if existing is not None and existing is not fn:
            raise ValueError(f"{what} name {key!r} is already registered to {existing!r}")
        table[key] = fn
        try:
            setattr(fn, NAME_ATTRIBUTE, key)
        except (AttributeError, TypeError):
            pass  # builtins and bound methods cannot carry the attribute; lookup by name still works
        return key
